package app

import (
	"context"

	"keydesk/store"
)

// VerifyAudit checks the audit chain.
func (s *Service) VerifyAudit(ctx context.Context, a Actor) (store.AuditReport, error) {
	if err := authorize(a, "read"); err != nil {
		return store.AuditReport{}, err
	}
	return s.st.VerifyAudit(ctx)
}

// AuditEntries calls fn for each audit entry matching f.
func (s *Service) AuditEntries(ctx context.Context, a Actor, f store.AuditFilter, fn func(store.AuditEntry) error) error {
	if err := authorize(a, "read"); err != nil {
		return err
	}
	return s.st.AuditEntries(ctx, f, fn)
}
