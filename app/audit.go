package app

import (
	"context"

	"keydesk/store"
)

// VerifyAudit checks the audit chain.
func (s *Service) VerifyAudit(ctx context.Context, a Actor) (store.AuditReport, error) {
	if err := s.authorize(ctx, a, PermAuditRead, "audit"); err != nil {
		return store.AuditReport{}, err
	}
	return s.verifyAudit(ctx)
}

// AuditEntries calls fn for each audit entry matching f (the console's
// activity log).
func (s *Service) AuditEntries(ctx context.Context, a Actor, f store.AuditFilter, fn func(store.AuditEntry) error) error {
	if err := s.authorize(ctx, a, PermAuditRead, "audit"); err != nil {
		return err
	}
	return s.st.AuditEntries(ctx, f, fn)
}

// ExportAudit calls fn for every audit entry, oldest first, streaming: the
// whole log is never held in memory.
func (s *Service) ExportAudit(ctx context.Context, a Actor, fn func(store.AuditEntry) error) error {
	if err := s.authorize(ctx, a, PermAuditExport, "audit"); err != nil {
		return err
	}
	return s.st.AuditEntries(ctx, store.AuditFilter{}, fn)
}
