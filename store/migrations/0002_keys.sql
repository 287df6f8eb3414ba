-- Hardware security keys. The lifecycle (which status may follow which) is
-- decided by package keys; this table keeps what it is told, with the
-- constraints that must hold whatever the caller does.
CREATE TABLE keys (
    id                INTEGER PRIMARY KEY,
    serial            TEXT NOT NULL UNIQUE CHECK (serial <> ''),
    status            TEXT NOT NULL CHECK (status IN ('ready', 'reserved', 'active', 'locked', 'suspended', 'deactivated', 'compromised')),
    reason            TEXT NOT NULL DEFAULT '',
    -- The employee the key is (or, once deactivated or compromised, was)
    -- assigned to. Kept as history until the key is wiped.
    employee_id       INTEGER REFERENCES employees(id),
    model             TEXT NOT NULL DEFAULT '',
    firmware          TEXT NOT NULL DEFAULT '',
    -- The activation code only as a keyed, salted hash (keys.CodeHash);
    -- NULL when the key has no code.
    code_hash         TEXT,
    code_expires_at   INTEGER,             -- unix nanoseconds, UTC
    code_attempts     INTEGER NOT NULL DEFAULT 0 CHECK (code_attempts >= 0),
    -- The per-key master secret, sealed with XChaCha20-Poly1305 under a
    -- sub-key of the master key (which is not in the database) and bound to
    -- the row; NULL when none.
    secret_sealed     BLOB,
    -- Incremented by every update: an update carrying a stale version fails.
    version           INTEGER NOT NULL DEFAULT 1,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    status_changed_at INTEGER NOT NULL,
    last_seen_at      INTEGER,
    CHECK ((code_hash IS NULL) = (code_expires_at IS NULL)),
    -- A key that counts as an employee's key names the employee; a key in
    -- stock names no one.
    CHECK (status NOT IN ('reserved', 'active', 'locked', 'suspended') OR employee_id IS NOT NULL),
    CHECK (status <> 'ready' OR employee_id IS NULL)
);

-- At most one key per employee: only keys in use count, so an employee whose
-- key was withdrawn, deactivated or compromised can be given another.
CREATE UNIQUE INDEX keys_one_per_employee ON keys(employee_id)
    WHERE status IN ('reserved', 'active', 'locked', 'suspended');
CREATE INDEX keys_employee ON keys(employee_id);
