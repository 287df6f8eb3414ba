-- When AD got a change's password (at its ad-written step): for a change
-- that AD got first and the key weeks later (rotate and hold), the age of
-- the password in AD counts from then, not from when the change was done.
ALTER TABLE password_changes ADD COLUMN ad_written_at INTEGER;
