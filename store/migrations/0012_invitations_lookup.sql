-- Each employee's newest invitation is found by this index (the list of
-- invitations, the sync's "ever invited"), not by a scan.
CREATE INDEX invitations_employee ON invitations(employee_id, id);

-- Wrong authenticator codes in a row, and until when the authenticator is
-- locked after too many (a person's own password change waits).
ALTER TABLE enrollments ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE enrollments ADD COLUMN locked_until INTEGER;
