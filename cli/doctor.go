package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			rep, err := s.svc.Doctor(cmd.Context(), s.actor)
			if err != nil {
				return err
			}
			err = g.emit(asJSON, rep, func() {
				for _, sec := range rep.Sections {
					fmt.Fprintf(g.stdout, "%s\n", sanitize.Text(sec.Title))
					for _, c := range sec.Checks {
						fmt.Fprintf(g.stdout, "  [%s] %s: %s\n", strings.ToUpper(c.Status), sanitize.Text(c.Name), sanitize.Text(c.Detail))
						if c.Fix != "" && c.Status != "pass" {
							fmt.Fprintf(g.stdout, "         fix: %s\n", sanitize.Text(c.Fix))
						}
					}
				}
			})
			if err != nil {
				return err
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
