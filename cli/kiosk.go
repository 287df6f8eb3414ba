package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"keydesk/ui"
)

func newKioskCmd(g *globals) *cobra.Command {
	var idle time.Duration
	var remote remoteKiosk
	cmd := &cobra.Command{
		Use:   "kiosk [--idle 60s]",
		Short: "A locked-down screen where people plug in their key: activation with the code, or their own password change",
		Long: `Kiosk opens a locked-down screen on this terminal: "plug in your key", then, for the
key plugged in at this machine only, its activation with the one-time code, or the
person's own password change (with the key's PIN or their current password). It
shows nothing about anyone else, returns to the start after --idle without a key
press and after each person, and cannot be left but with the exit code the
operator sets when starting it (ctrl+x asks for it).

It runs as the operator who starts it (key.activate and password.self are
needed), with the simulated keys of --sim-keys DIR as well as USB keys.

With --server ssh://HOST:PORT it is the kiosk of a KeyDesk server elsewhere: it
connects with the kiosk's own key (--key; an operator with role kiosk) after
checking the server's (--host-key), shows the kiosk screen the server draws, and
carries the keys plugged in here to the server, each in an SSH channel of its
own. The key protocol runs end to end between the server and the key: this
machine keeps no database and sees no secret.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := g.needTerminal("the kiosk"); err != nil {
				return err
			}
			if remote.server != "" {
				return g.runRemoteKiosk(ctx, remote)
			}
			exit, err := g.readExitCode()
			if err != nil {
				return err
			}
			s, err := g.open(ctx, "kiosk")
			if err != nil {
				return err
			}
			defer s.Close()
			return g.withBackground(ctx, s, func(ctx context.Context) error {
				return ui.RunKiosk(ctx, s.svc, ui.RunOptions{Actor: s.actor}, idle, exit)
			})
		},
	}
	cmd.Flags().DurationVar(&idle, "idle", ui.DefaultKioskIdle, "return to the start after this long without a key press")
	cmd.Flags().StringVar(&remote.server, "server", "", "a KeyDesk server to be the kiosk of (ssh://host:2222): its screen, with the keys plugged in here")
	cmd.Flags().StringVar(&remote.keyFile, "key", "", "with --server: the kiosk's own SSH private key (an operator with role kiosk)")
	cmd.Flags().StringVar(&remote.hostKey, "host-key", "", "with --server: the server's host key fingerprint (SHA256:..., from keydesk serve --fingerprint)")
	cmd.Flags().StringVar(&remote.tap, "tap", "", "write every byte of the key channels to this file (a test aid)")
	cmd.Flags().MarkHidden("tap")
	return cmd
}

// readExitCode asks the operator for the kiosk's exit code, twice.
func (g *globals) readExitCode() (string, error) {
	exit, err := g.readSecret("exit code for this kiosk (the operator's; at least 4 characters): ", "the exit code")
	if err != nil {
		return "", err
	}
	again, err := g.readSecret("the exit code again: ", "the exit code")
	if err != nil {
		return "", err
	}
	switch {
	case len(exit) < 4:
		return "", errors.New("the exit code is too short: use at least 4 characters")
	case exit != again:
		return "", errors.New("the two exit codes differ: nothing was started")
	}
	return exit, nil
}
