package store

import (
	"context"
	"fmt"
)

// GraphGroup is a group of a domain's group graph: the nesting under its
// sync and password groups that an incremental sync works from.
type GraphGroup struct {
	GUID string
	DN   string
	Root string // "sync", "password", "both" (one group is both) or "" (a nested group)
}

// Roots of the group graph.
const (
	RootSync     = "sync"
	RootPassword = "password"
	RootBoth     = "both"
)

// SyncGraphGroups reads the groups of a domain's group graph (none: no
// graph stored).
func (s *Store) SyncGraphGroups(ctx context.Context, domain string, fn func(GraphGroup)) error {
	rows, err := s.db.QueryContext(ctx, `SELECT guid, dn, root FROM sync_groups WHERE domain = ?`, domain)
	if err != nil {
		return fmt.Errorf("read the group graph of %s: %w", domain, err)
	}
	defer rows.Close()
	for rows.Next() {
		var g GraphGroup
		if err := rows.Scan(&g.GUID, &g.DN, &g.Root); err != nil {
			return fmt.Errorf("read the group graph of %s: %w", domain, err)
		}
		fn(g)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the group graph of %s: %w", domain, err)
	}
	return nil
}

// SyncGraphEdges reads the direct memberships of a domain's group graph
// (a user's or group's GUID, and the group's), row by row, in order; with
// groupsOnly, only those of its groups (how the groups nest).
func (s *Store) SyncGraphEdges(ctx context.Context, domain string, groupsOnly bool, fn func(node, parent string)) error {
	q := `SELECT node, parent FROM sync_edges WHERE domain = ? ORDER BY node, parent`
	args := []any{domain}
	if groupsOnly {
		q = `SELECT node, parent FROM sync_edges WHERE domain = ? AND node IN (SELECT guid FROM sync_groups WHERE domain = ?) ORDER BY node, parent`
		args = append(args, domain)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read the group graph of %s: %w", domain, err)
	}
	defer rows.Close()
	for rows.Next() {
		var node, parent string
		if err := rows.Scan(&node, &parent); err != nil {
			return fmt.Errorf("read the group graph of %s: %w", domain, err)
		}
		fn(node, parent)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the group graph of %s: %w", domain, err)
	}
	return nil
}

// PutSyncGraph stores a domain's group graph: its groups, and the direct
// memberships of nodes. With all set, every stored membership of the
// domain is replaced; otherwise only those of nodes (the users and groups
// whose memberships changed). edges gives each node's current groups.
func (tx *Tx) PutSyncGraph(ctx context.Context, domain string, groups []GraphGroup, all bool, nodes []string, edges func(node string) []string) error {
	if _, err := tx.tx.ExecContext(ctx, `DELETE FROM sync_groups WHERE domain = ?`, domain); err != nil {
		return fmt.Errorf("clear the group graph of %s: %w", domain, err)
	}
	ins, err := tx.stmt(ctx, `INSERT INTO sync_groups(domain, guid, dn, root) VALUES (?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("store the group graph of %s: %w", domain, err)
	}
	for _, g := range groups {
		if _, err := ins.ExecContext(ctx, domain, g.GUID, g.DN, g.Root); err != nil {
			return fmt.Errorf("store group %s of %s's graph: %w", g.DN, domain, err)
		}
	}
	if all {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM sync_edges WHERE domain = ?`, domain); err != nil {
			return fmt.Errorf("clear the group graph of %s: %w", domain, err)
		}
	} else {
		del, err := tx.stmt(ctx, `DELETE FROM sync_edges WHERE domain = ? AND node = ?`)
		if err != nil {
			return fmt.Errorf("store the group graph of %s: %w", domain, err)
		}
		for _, n := range nodes {
			if _, err := del.ExecContext(ctx, domain, n); err != nil {
				return fmt.Errorf("store the group graph of %s: %w", domain, err)
			}
		}
	}
	add, err := tx.stmt(ctx, `INSERT INTO sync_edges(domain, node, parent) VALUES (?,?,?)`)
	if err != nil {
		return fmt.Errorf("store the group graph of %s: %w", domain, err)
	}
	for _, n := range nodes {
		for _, p := range edges(n) {
			if _, err := add.ExecContext(ctx, domain, n, p); err != nil {
				return fmt.Errorf("store the group graph of %s: %w", domain, err)
			}
		}
	}
	return nil
}
