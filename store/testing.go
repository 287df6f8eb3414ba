package store

import (
	"context"
	"fmt"
)

// TamperForTest runs raw statements against the database, bypassing every
// rule of this package. It exists so that tests of other packages can play an
// attacker with access to the file (editing the audit log, say) and check
// that KeyDesk notices; nothing else may call it.
func (s *Store) TamperForTest(ctx context.Context, statements ...string) error {
	for _, q := range statements {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("tamper %q: %w", q, err)
		}
	}
	return nil
}
