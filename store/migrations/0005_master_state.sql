-- What the database keeps about its master key, which it never holds: the
-- key's fingerprint (so that another key is noticed before it opens or
-- seals anything), and the database's own keys sealed under it (the
-- activation code pepper, the audit log's MAC key), so that a new master
-- key re-seals them instead of invalidating what they protect.
CREATE TABLE master_state (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
