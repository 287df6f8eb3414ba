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
	var verifyJSON bool
	verify := &cobra.Command{
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
			if verifyJSON {
				if err := printJSON(g.stdout, map[string]any{"ok": rep.OK(), "entries": rep.Entries, "first_bad": rep.First, "problems": rep.Problems}); err != nil {
					return err
				}
				if !rep.OK() {
					return exitError{code: exitFailed}
				}
				return nil
			}
			if rep.OK() {
				fmt.Fprintf(g.stdout, "audit log intact: %s\n", plural(int(rep.Entries), "entry"))
				return nil
			}
			if rep.First > 0 {
				fmt.Fprintf(g.stdout, "audit log BROKEN at entry %d (%s read):\n", rep.First, plural(int(rep.Entries), "entry"))
			} else {
				fmt.Fprintf(g.stdout, "audit log BROKEN (%s read):\n", plural(int(rep.Entries), "entry"))
			}
			for _, p := range rep.Problems {
				fmt.Fprintf(g.stdout, "  - %s\n", sanitize.Text(p))
			}
			return exitError{code: 1}
		}),
	}
	verify.Flags().BoolVar(&verifyJSON, "json", false, "print the result as JSON")
	cmd.AddCommand(verify)
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
