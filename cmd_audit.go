package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"keydesk/app"

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
		Short: "Check that no audit entry was edited, inserted or deleted",
		Args:  cobra.NoArgs,
		RunE: g.withService(func(cmd *cobra.Command, _ []string, svc *app.Service) error {
			rep, err := svc.VerifyAudit(cmd.Context(), cliActor())
			if err != nil {
				return err
			}
			if rep.OK() {
				fmt.Fprintf(g.stdout, "audit log intact: %d entries\n", rep.Entries)
				return nil
			}
			fmt.Fprintf(g.stdout, "audit log BROKEN (%d entries read):\n", rep.Entries)
			for _, p := range rep.Problems {
				fmt.Fprintf(g.stdout, "  - %s\n", p)
			}
			return exitError{code: 1}
		}),
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "export",
		Short: "Print the audit log as JSON lines, oldest first",
		Args:  cobra.NoArgs,
		RunE: g.withService(func(cmd *cobra.Command, _ []string, svc *app.Service) error {
			enc := json.NewEncoder(g.stdout)
			return svc.AuditEntries(cmd.Context(), cliActor(), store.AuditFilter{}, func(e store.AuditEntry) error {
				return enc.Encode(e)
			})
		}),
	})
	return cmd
}
