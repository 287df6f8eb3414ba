package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"keydesk/internal/sanitize"
	"keydesk/ldapsync"
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			dataDir := g.resolvedDataDir(cfg)
			if hasDatabase(dataDir) {
				return g.withSession(func(cmd *cobra.Command, _ []string, s *session) error { return g.doctor(cmd, s, asJSON, "") })(cmd, nil)
			}
			// Nothing here yet: the domains are checked from a database
			// made for this run elsewhere, and removed; none is left here.
			tmp, err := os.MkdirTemp("", "keydesk-doctor-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			s, err := g.openSession(cmd.Context(), cfg, tmp, sessionOptions{via: "cli"})
			if err != nil {
				return err
			}
			defer s.Close()
			return g.doctor(cmd, s, asJSON, dataDir)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON")
	return cmd
}

// doctor runs and prints the checks; noData names a data directory that
// holds no database yet (its checks are replaced by that).
func (g *globals) doctor(cmd *cobra.Command, s *session, asJSON bool, noData string) error {
	rep, err := s.svc.Doctor(cmd.Context(), s.actor)
	if err != nil {
		return err
	}
	if noData != "" {
		for i, sec := range rep.Sections {
			if sec.Title == "database" {
				rep.Sections[i].Checks = []ldapsync.Check{{Name: "database", Status: ldapsync.CheckWarn,
					Detail: "none yet in " + noData, Fix: "run keydesk sync to import the configured domains"}}
			}
		}
	}
	err = g.emit(asJSON, rep, func() {
		// Each piece of advice once: a second check that the same fix
		// mends says so in a word.
		given := map[string]bool{}
		for _, sec := range rep.Sections {
			fmt.Fprintf(g.stdout, "%s\n", sanitize.Text(sec.Title))
			for _, c := range sec.Checks {
				fmt.Fprintf(g.stdout, "  [%s] %s: %s\n", strings.ToUpper(c.Status), sanitize.Text(c.Name), sanitize.Text(c.Detail))
				switch {
				case c.Fix == "" || c.Status == "pass":
				case given[c.Fix]:
					fmt.Fprintln(g.stdout, "         fix: as above")
				default:
					given[c.Fix] = true
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
}
