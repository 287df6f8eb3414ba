package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newAdminCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Maintenance of KeyDesk itself: the master key",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "rekey",
		Short: "Put every secret of the database under a new master key",
		Long: `Rekey makes a new master key and, in one transaction, re-seals under it every
key's master secret, the activation codes' pepper (outstanding codes stay valid)
and the audit log's MAC key. The old key file is kept next to the new one as a
dated backup (mode 0600): it opens database backups made before the rekey, so
keep it with them, and destroy both together.

Close open consoles first: a console that still holds the old key refuses to
open or seal anything and asks to be restarted. A rekey cut off at any point
is finished, or forgotten, the next time KeyDesk starts.`,
		Args: cobra.NoArgs,
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			rep, err := s.svc.RekeyMasterKey(cmd.Context(), s.actor, s.master)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "re-sealed %d key secrets, %d held passwords, %d unsent invitations, %d authenticators, the code pepper and the audit key under a new master key in %s\n", rep.Secrets, rep.Passwords, rep.Invitations, rep.Authenticators, rep.Path)
			if rep.Backup != "" {
				fmt.Fprintf(g.stdout, "the old master key is kept as %s: keep it with the backups made before now\n", rep.Backup)
			}
			return nil
		}),
	})
	return cmd
}
