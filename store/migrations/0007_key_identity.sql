-- Key identity (attestation) and the secret kept across an unlock.
--
-- attest_pub: the key's attestation public key (uncompressed P-256), pinned
-- the first time the key proved its serial with a trusted maker's
-- attestation; every later device-driven change must be signed by it.
-- attest_maker: the trusted maker CA it chained to; 'unattested' for a key
-- registered without attestation ([keys] require_attestation = false);
-- '' before the key was seen.
ALTER TABLE keys ADD COLUMN attest_pub BLOB;
ALTER TABLE keys ADD COLUMN attest_maker TEXT NOT NULL DEFAULT '';
-- device_state: the state the key last reported (blank, linked, locked): a
-- claim, recorded, which changes nothing by itself.
ALTER TABLE keys ADD COLUMN device_state TEXT NOT NULL DEFAULT '';
-- prev_secret_sealed: after an unlock, the secret the device still holds
-- (sealed as secret_sealed), kept until the device is wiped with it and
-- linked with the new one.
ALTER TABLE keys ADD COLUMN prev_secret_sealed BLOB;
