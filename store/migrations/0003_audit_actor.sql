-- Who acted, as the application layer proved it: the operator's role and how
-- they were authenticated (the local OS user, later an SSH key). Entries
-- written before this migration have neither; the hash covers both when set.
ALTER TABLE audit_log ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN auth TEXT NOT NULL DEFAULT '';
