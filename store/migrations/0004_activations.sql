-- Activations under way: the last step done (package keys, Step) and the
-- key's version when its code was accepted, so that an activation cut off by
-- a crash or an unplugged key resumes where it stopped. A row exists only
-- between the accepted code and the key recorded Active (or the progress
-- discarded).
CREATE TABLE activations (
    key_id      INTEGER PRIMARY KEY REFERENCES keys(id),
    step        TEXT NOT NULL CHECK (step <> ''),
    key_version INTEGER NOT NULL,
    actor       TEXT NOT NULL,     -- who typed the accepted code
    accepted_at INTEGER NOT NULL,  -- unix nanoseconds, UTC
    updated_at  INTEGER NOT NULL
);
