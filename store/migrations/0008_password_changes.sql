-- Domain passwords. A key holds one credential slot per account it logs in
-- to; credential_slots says which slot is whose, once and for all (slots do
-- not move when accounts come and go).
CREATE TABLE credential_slots (
    key_id     INTEGER NOT NULL REFERENCES keys(id),
    slot       INTEGER NOT NULL CHECK (slot >= 0),
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (key_id, slot),
    UNIQUE (key_id, account_id)
);

-- The journal of password changes (package rotation: Step, Order, Next).
-- Each step is committed before the next is attempted, so that recovery
-- after a crash knows what may have happened. The new password is sealed
-- under the master key and kept until the change is done (the key holds
-- it) or failed and cleaned up.
CREATE TABLE password_changes (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    key_id          INTEGER REFERENCES keys(id),  -- the key that must hold it; NULL: none (rotate and hold, no key yet)
    slot            INTEGER,                      -- that key's slot for the account
    kind            TEXT NOT NULL CHECK (kind IN ('activation', 'scheduled', 'rotate', 'generate', 'set', 'self-key', 'self-both')),
    ord             TEXT NOT NULL CHECK (ord IN ('key-first', 'ad-first', 'key-only')),
    step            TEXT NOT NULL CHECK (step IN ('planned', 'key-pending', 'ad-sending', 'ad-written', 'done', 'failed')),
    password_sealed BLOB,
    discarded       INTEGER NOT NULL DEFAULT 0,   -- failed: the key no longer holds it as pending
    actor           TEXT NOT NULL,
    error           TEXT NOT NULL DEFAULT '',     -- why it failed, or the last recoverable error
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    CHECK ((key_id IS NULL) = (slot IS NULL)),
    -- The password is kept exactly as long as the change is not closed.
    CHECK ((step = 'done' OR (step = 'failed' AND discarded = 1)) = (password_sealed IS NULL)),
    CHECK ((step IN ('done', 'failed')) = (finished_at IS NOT NULL))
);
-- At most one change under way per account.
CREATE UNIQUE INDEX password_changes_one_open ON password_changes(account_id) WHERE step NOT IN ('done', 'failed');
CREATE INDEX password_changes_key ON password_changes(key_id) WHERE password_sealed IS NOT NULL;
CREATE INDEX password_changes_recent ON password_changes(created_at);
