-- Each entry's MAC: HMAC-SHA256 of its hash under the audit log's key,
-- which is sealed under the master key (master_state 'audit-key'), so that
-- whoever can write the file cannot recompute the chain. Entries written
-- before the log was keyed have none; the sealed key says from which entry
-- on every entry has one.
ALTER TABLE audit_log ADD COLUMN mac TEXT NOT NULL DEFAULT '';
