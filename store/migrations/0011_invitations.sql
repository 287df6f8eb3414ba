-- Import-only employees: an invitation carries a one-time enrollment code
-- (kept only as a keyed hash); at most one live invitation per employee.
CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY,
    employee_id INTEGER NOT NULL REFERENCES employees(id),
    email       TEXT NOT NULL,
    code_hash   BLOB NOT NULL UNIQUE,
    actor       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    replaced_at INTEGER
);
CREATE UNIQUE INDEX invitations_live ON invitations(employee_id) WHERE used_at IS NULL AND replaced_at IS NULL;

-- The durable outbox: a message decided in a transaction is sent later,
-- at least once and retried with backoff. The payload (the enrollment
-- code) is sealed under the master key and cleared once sent.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    invitation_id   INTEGER REFERENCES invitations(id),
    recipient       TEXT NOT NULL,
    payload_sealed  BLOB,
    state           TEXT NOT NULL, -- pending, sent, failed, cancelled
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    message_id      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_invitation ON outbox(invitation_id);

-- An employee's authenticator: the confirmed TOTP secret and the last time
-- step used (a code is never taken twice), and one waiting to be confirmed.
CREATE TABLE enrollments (
    employee_id    INTEGER PRIMARY KEY REFERENCES employees(id),
    secret_sealed  BLOB,
    last_step      INTEGER NOT NULL DEFAULT 0,
    confirmed_at   INTEGER,
    pending_sealed BLOB,
    pending_at     INTEGER,
    pending_invitation INTEGER REFERENCES invitations(id)
);
