package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"keydesk/internal/sanitize"
	"keydesk/store"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify or export the append-only, hash-chained audit log",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check that no audit entry was edited, inserted, forged or deleted",
		Long: `Verify recomputes the audit log's hash chain and each entry's MAC (under the
audit key, sealed under the master key: whoever can write the database but
has not the master key cannot forge one), checks that the log starts with its
genesis entry and does not stop short of the newest entry kept outside the
database (audit.head, next to the master key). It names the first bad entry
and what is wrong with it, and exits 1 when anything is.`,
		Args: cobra.NoArgs,
		RunE: g.withReadSession(func(cmd *cobra.Command, _ []string, s *session) error {
			rep, err := s.svc.VerifyAudit(cmd.Context(), s.actor)
			if err != nil {
				return err
			}
			if rep.OK() {
				fmt.Fprintf(g.stdout, "audit log intact: %d entries\n", rep.Entries)
				return nil
			}
			if rep.First > 0 {
				fmt.Fprintf(g.stdout, "audit log BROKEN at entry %d (%d entries read):\n", rep.First, rep.Entries)
			} else {
				fmt.Fprintf(g.stdout, "audit log BROKEN (%d entries read):\n", rep.Entries)
			}
			for _, p := range rep.Problems {
				fmt.Fprintf(g.stdout, "  - %s\n", sanitize.Text(p))
			}
			return exitError{code: 1}
		}),
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "export",
		Short: "Print the audit log as JSON lines, oldest first",
		Long: `Export prints every audit entry as one line of JSON, oldest first, as it reads
them (the log is never held in memory). Refused operations are entries too,
with the outcome "denied".`,
		Args: cobra.NoArgs,
		RunE: g.withReadSession(func(cmd *cobra.Command, _ []string, s *session) error {
			enc := json.NewEncoder(sanitize.JSONWriter(g.stdout))
			return s.svc.ExportAudit(cmd.Context(), s.actor, func(e store.AuditEntry) error {
				return enc.Encode(e)
			})
		}),
	})
	return cmd
}
