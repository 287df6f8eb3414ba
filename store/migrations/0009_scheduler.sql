-- Several KeyDesk processes may share one database (an admin console, a
-- kiosk): a lease makes exactly one of them the scheduler, and another
-- takes over when the holder stops renewing it.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX password_changes_account ON password_changes(account_id, step);
