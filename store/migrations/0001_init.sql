-- Employees are people; accounts are their directory accounts. One employee
-- can hold accounts in several domains (merged by normalised email).
CREATE TABLE employees (
    id           INTEGER PRIMARY KEY,
    email_norm   TEXT UNIQUE,              -- trimmed, case-folded; NULL = no email
    email        TEXT,                     -- as the winning account spells it
    display_name TEXT NOT NULL DEFAULT '',
    department   TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed')),
    source       TEXT NOT NULL CHECK (source IN ('ad', 'manual')),
    created_at   INTEGER NOT NULL,         -- unix nanoseconds, UTC
    updated_at   INTEGER NOT NULL,
    removed_at   INTEGER
);

CREATE TABLE accounts (
    id                INTEGER PRIMARY KEY,
    domain            TEXT NOT NULL,
    object_guid       TEXT NOT NULL,
    employee_id       INTEGER NOT NULL REFERENCES employees(id),
    object_sid        TEXT NOT NULL DEFAULT '',
    sam_account_name  TEXT NOT NULL DEFAULT '',
    upn               TEXT NOT NULL DEFAULT '',
    mail              TEXT NOT NULL DEFAULT '',
    given_name        TEXT NOT NULL DEFAULT '',
    sn                TEXT NOT NULL DEFAULT '',
    display_name      TEXT NOT NULL DEFAULT '',
    department        TEXT NOT NULL DEFAULT '',
    title             TEXT NOT NULL DEFAULT '',
    company           TEXT NOT NULL DEFAULT '',
    telephone         TEXT NOT NULL DEFAULT '',
    dn                TEXT NOT NULL DEFAULT '',
    enabled           INTEGER NOT NULL DEFAULT 1,
    pwd_last_set      INTEGER,             -- unix nanoseconds; NULL = never / must change
    usn_changed       INTEGER NOT NULL DEFAULT 0,
    in_sync_group     INTEGER NOT NULL DEFAULT 1,
    password_rotation INTEGER NOT NULL DEFAULT 0,
    left_reason       TEXT CHECK (left_reason IN ('left-group', 'disabled', 'deleted')),
    left_at           INTEGER,
    first_seen        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (domain, object_guid)
);
CREATE INDEX accounts_employee ON accounts(employee_id);

-- The high-water mark of the last successful sync of each domain, valid only
-- for the domain controller (and its invocationId) that issued it.
CREATE TABLE sync_state (
    domain          TEXT PRIMARY KEY,
    dsa_dn          TEXT NOT NULL DEFAULT '',
    invocation_id   TEXT NOT NULL DEFAULT '',
    highest_usn     INTEGER NOT NULL DEFAULT 0,
    server_url      TEXT NOT NULL DEFAULT '',
    last_success_at INTEGER,
    last_attempt_at INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    last_summary    TEXT NOT NULL DEFAULT ''  -- JSON
);

-- Removals held back by the accident guard until an admin allows them.
CREATE TABLE held_removals (
    domain      TEXT NOT NULL,
    object_guid TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    PRIMARY KEY (domain, object_guid)
);

-- Append-only, hash-chained audit log.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- The newest entry's sequence number and hash, so that cutting entries off
-- the end of the log is noticed too.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
