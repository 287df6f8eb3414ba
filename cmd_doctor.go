package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"keydesk/app"

	"keydesk/internal/sanitize"
)

func newDoctorCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the setup of every domain and of the database, and say how to fix what is wrong",
		Long: `Doctor checks, domain by domain: the bind password, each server address, the
TLS certificate (issuer, expiry, host name), the bind (explaining AD's codes),
the base DN, the sync and password groups and their member counts, and the
server's controls; then the database's integrity and the audit chain. It
changes nothing.`,
		Args: cobra.NoArgs,
		RunE: g.withService(func(cmd *cobra.Command, _ []string, svc *app.Service) error {
			rep := svc.Doctor(cmd.Context(), cliActor())
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				for _, sec := range rep.Sections {
					fmt.Fprintf(g.stdout, "%s\n", sec.Title)
					for _, c := range sec.Checks {
						fmt.Fprintf(g.stdout, "  [%s] %s: %s\n", strings.ToUpper(c.Status), c.Name, sanitize.Text(c.Detail))
						if c.Fix != "" && c.Status != "pass" {
							fmt.Fprintf(g.stdout, "         fix: %s\n", sanitize.Text(c.Fix))
						}
					}
				}
			}
			if rep.Failed() {
				return exitError{code: 1}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON")
	return cmd
}
