package cli

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"keydesk/internal/sanitize"
	"keydesk/sshd"
	"keydesk/ui"
)

// serveGrace is how long sessions have, once the server is told to stop,
// to see it before their connections close.
const serveGrace = 5 * time.Second

func newServeCmd(g *globals) *cobra.Command {
	var fingerprint bool
	cmd := &cobra.Command{
		Use:   "serve [--fingerprint]",
		Short: "Serve the console over SSH to the operators' keys (ssh -p 2222 HOST)",
		Long: `Serve runs KeyDesk as a server: the database, the scheduler (periodic sync and
due rotations) and the keys plugged into this machine, with the console served
over SSH to every operator whose key ([[operator]] authorized_keys) the session
proves: public keys only, the role from the key. Every session sees the same
live state.

It listens on [ssh] listen (default 127.0.0.1:2222). The host key
(ssh_host_ed25519_key in the data directory, mode 0600) is made on first start;
its fingerprint is printed at start and by --fingerprint, for clients to check.
SIGTERM tells the sessions, finishes the step in flight and stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx, "serve")
			if err != nil {
				return err
			}
			defer s.Close()
			path := s.cfg.SSH.HostKey
			if path == "" {
				path = filepath.Join(filepath.Dir(s.st.Path()), sshd.HostKeyFile)
			}
			hostKey, fp, err := sshd.LoadOrCreateHostKey(path)
			if err != nil {
				return err
			}
			if fingerprint {
				fmt.Fprintln(g.stdout, fp)
				return nil
			}
			keys, problems := sshd.ParseOperators(s.cfg.Operators)
			for _, p := range problems {
				fmt.Fprintf(g.stderr, "keydesk: warning: %s\n", sanitize.Lines(p.Error()))
			}
			if len(keys) == 0 {
				fmt.Fprintln(g.stderr, "keydesk: warning: no operator has an authorized key: nobody can connect (add authorized_keys to an [[operator]])")
			}
			srv, err := sshd.New(sshd.Options{Config: s.cfg.SSH, HostKey: hostKey, Keys: keys, Log: g.logger(),
				Console: ui.SSHMiddleware(s.svc, sshd.ActorOf), OnStop: s.svc.AnnounceStop, Sink: s.svc})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", s.cfg.SSH.Listen)
			if err != nil {
				return fmt.Errorf("listen on %s ([ssh] listen): %w", s.cfg.SSH.Listen, err)
			}
			fmt.Fprintf(g.stdout, "keydesk serves on %s\nhost key %s\n%s\n", l.Addr(), fp, plural(len(keys), "operator key"))
			return g.withBackground(ctx, s, func(ctx context.Context) error {
				err := srv.Serve(ctx, l, serveGrace)
				fmt.Fprintln(g.stdout, "keydesk stopped")
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&fingerprint, "fingerprint", false, "print the host key's fingerprint and exit")
	return cmd
}

func newOperatorsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "operators [--json]",
		Short: "List the operators: name, role, local login, SSH keys (with their problems)",
		Args:  cobra.NoArgs,
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			ops, err := s.svc.Operators(cmd.Context(), s.actor)
			if err != nil {
				return err
			}
			keys, problems := sshd.ParseOperators(ops)
			type keyView struct {
				Fingerprint string `json:"fingerprint"`
				Type        string `json:"type"`
				Comment     string `json:"comment,omitempty"`
			}
			type opView struct {
				Name     string    `json:"name"`
				Role     string    `json:"role"`
				OSUser   string    `json:"os_user,omitempty"`
				Keys     []keyView `json:"keys"`
				Problems []string  `json:"problems,omitempty"`
			}
			views := make([]opView, len(ops))
			for i, o := range ops {
				views[i] = opView{Name: o.Name, Role: o.Role, OSUser: o.OSUser, Keys: []keyView{}}
				for _, k := range keys {
					if k.Operator.Name == o.Name {
						views[i].Keys = append(views[i].Keys, keyView{Fingerprint: k.Fingerprint, Type: k.Public.Type(), Comment: k.Comment})
					}
				}
				for _, p := range problems {
					if p.Operator == o.Name {
						views[i].Problems = append(views[i].Problems, p.Error())
					}
				}
			}
			return g.emit(asJSON, views, func() {
				if len(views) == 0 {
					fmt.Fprintln(g.stdout, "no operators are configured: whoever runs KeyDesk as the data's owner is an admin")
					return
				}
				w := table(g.stdout)
				fmt.Fprintln(w, "NAME\tROLE\tOS USER\tSSH KEYS")
				for _, v := range views {
					var fps []string
					for _, k := range v.Keys {
						fps = append(fps, k.Fingerprint+" "+k.Comment)
					}
					osUser := v.OSUser
					if osUser == "" {
						osUser = "-"
					}
					keys := "-"
					if len(fps) > 0 {
						keys = fps[0]
						for _, f := range fps[1:] {
							keys += ", " + f
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", sanitize.Text(v.Name), v.Role, sanitize.Text(osUser), sanitize.Text(keys))
				}
				w.Flush()
				for _, v := range views {
					for _, p := range v.Problems {
						fmt.Fprintf(g.stdout, "problem: %s\n", sanitize.Lines(p))
					}
				}
			})
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
