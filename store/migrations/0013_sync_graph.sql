-- The group graph under each domain's sync and password groups, kept
-- between syncs so that an incremental sync works out membership locally
-- and asks the DC only what changed: the groups of the graph, and each
-- user's or group's direct memberships in them (by objectGUID).
CREATE TABLE sync_groups (
    domain TEXT NOT NULL,
    guid   TEXT NOT NULL,
    dn     TEXT NOT NULL,
    root   TEXT NOT NULL DEFAULT '' CHECK (root IN ('', 'sync', 'password')),
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
