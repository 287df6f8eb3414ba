-- The group graph under each domain's sync and password groups, kept
-- between syncs so that an incremental sync works out membership locally
-- and asks the DC only what changed: the groups of the graph, and each
-- user's or group's direct memberships in them (by objectGUID).
CREATE TABLE sync_groups (
    domain TEXT NOT NULL,
    guid   TEXT NOT NULL,
    dn     TEXT NOT NULL,
    root   TEXT NOT NULL DEFAULT '' CHECK (root IN ('', 'sync', 'password', 'both')),
    PRIMARY KEY (domain, guid)
) WITHOUT ROWID;

CREATE TABLE sync_edges (
    domain TEXT NOT NULL,
    node   TEXT NOT NULL,
    parent TEXT NOT NULL,
    PRIMARY KEY (domain, node, parent)
) WITHOUT ROWID;

-- When the last full read was: the periodic check of the incremental
-- state against a full read counts from it.
ALTER TABLE sync_state ADD COLUMN last_full_at INTEGER;

-- What a sync reads of every member without reading the accounts whole
-- (DomainMembers, CountMembers): from indexes, not a scan of the table.
-- ad_hash is a hash of what a sync copies from AD (Account.ADHash): a
-- member read again whose hash is the same is not loaded or written.
ALTER TABLE accounts ADD COLUMN ad_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX accounts_domain_members ON accounts(domain, object_guid, password_rotation, ad_hash, enabled, left_reason) WHERE in_sync_group = 1;
CREATE INDEX accounts_domain_current ON accounts(domain) WHERE left_reason IS NULL;
