package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"keydesk/app"
	"keydesk/internal/sanitize"
	"keydesk/keys"
)

func newKeysCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List the hardware keys, and add, assign, activate, suspend, unlock, withdraw or compromise them",
		Long: `Keys lists the key inventory. A key's lifecycle: Ready (in stock) -> Reserved
(assigned, with a one-time activation code) -> Active (activated on site with the
code); Locked (three wrong codes, or the key's own PIN), Suspended, Deactivated
(withdrawn, or its employee left the sync group; plugged in again it is wiped and
back to Ready) and Compromised (lost, stolen or broken; final).

Keys plugged into this machine are found on USB, and with --sim-keys DIR every
simulated key file in DIR counts as plugged in.`,
		Args: cobra.NoArgs,
		RunE: g.withReadSession(func(cmd *cobra.Command, _ []string, s *session) error {
			g.scanKeys(cmd.Context(), s)
			ks, err := s.svc.Keys(cmd.Context(), s.actor)
			if err != nil {
				return err
			}
			return g.emit(asJSON, ks, func() { printKeys(g, ks) })
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as a JSON array")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "add SERIAL...",
			Short: "Add keys to the inventory as Ready (all or none)",
			Args:  cobra.MinimumNArgs(1),
			RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
				if err := s.svc.AddKeys(cmd.Context(), s.actor, args); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "added %s as ready\n", plural(len(args), "key"))
				return nil
			}),
		},
		&cobra.Command{
			Use:   "assign SERIAL EMPLOYEE",
			Short: "Assign a Ready key to an employee (id or email) and print its one-time activation code",
			Args:  cobra.ExactArgs(2),
			RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
				code, err := s.svc.AssignKey(cmd.Context(), s.actor, args[0], args[1])
				if err != nil {
					return err
				}
				g.printCode(args[0], code)
				return nil
			}),
		},
		&cobra.Command{
			Use:   "renew-code SERIAL",
			Short: "Issue a new activation code for a Reserved key (the old one stops working)",
			Args:  cobra.ExactArgs(1),
			RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
				code, err := s.svc.RenewCode(cmd.Context(), s.actor, args[0])
				if err != nil {
					return err
				}
				g.printCode(args[0], code)
				return nil
			}),
		},
		newKeysActivateCmd(g),
		newKeyActionCmd(g, "suspend", "Take an Active key out of service", func(ctx context.Context, s *session, serial, reason string) error {
			return s.svc.SuspendKey(ctx, s.actor, serial, reason)
		}),
		newKeyUnlockCmd(g),
		newKeyActionCmd(g, "withdraw", "Take a key away from its employee (Deactivated; wiped when plugged in again)", func(ctx context.Context, s *session, serial, reason string) error {
			return s.svc.WithdrawKey(ctx, s.actor, serial, reason)
		}),
		newKeyCompromiseCmd(g),
		newKeysSimulateCmd(g),
	)
	return cmd
}

func printKeys(g *globals, ks []app.KeyView) {
	tw := table(g.stdout)
	fmt.Fprintln(tw, "SERIAL\tSTATUS\tREASON\tOWNER\tLAST SEEN\tPLUGGED\tATTESTATION")
	var unverified []app.KeyView
	for _, k := range ks {
		if k.Status == app.StatusUnverifiedDevice {
			unverified = append(unverified, k)
			continue
		}
		seen, plugged := "-", ""
		if k.LastSeen != nil {
			seen = k.LastSeen.Local().Format("2006-01-02 15:04")
		}
		if k.PluggedIn {
			plugged = "yes"
		}
		owner := k.OwnerEmail
		if owner == "" {
			owner = "-"
		}
		att := k.Attestation
		if k.Attestation == "verified" {
			att += " " + k.AttestationKey
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sanitize.Text(k.Serial), k.Status, k.Reason, sanitize.Text(owner), seen, plugged, att)
	}
	tw.Flush()
	fmt.Fprintln(g.stdout, plural(len(ks)-len(unverified), "key"))
	for _, u := range unverified {
		fmt.Fprintf(g.stdout, "UNVERIFIED DEVICE plugged in, claiming serial %s: %s\n", sanitize.Text(u.Serial), sanitize.Text(u.Unverified))
	}
}

// printCode shows a newly issued activation code, once, with its real expiry.
func (g *globals) printCode(serial string, code app.IssuedCode) {
	fmt.Fprintf(g.stdout, "key %s is reserved; its one-time activation code (shown only now, valid until %s):\n\n    %s\n\n",
		sanitize.Text(serial), code.ExpiresAt.Local().Format("2006-01-02 15:04"), code)
}

func newKeyActionCmd(g *globals, name, short string, fn func(ctx context.Context, s *session, serial, reason string) error) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   name + " SERIAL [--reason TEXT]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			if err := fn(cmd.Context(), s, args[0], reason); err != nil {
				return err
			}
			k, err := s.svc.Key(cmd.Context(), s.actor, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "key %s is now %s\n", sanitize.Text(args[0]), k.Status)
			return nil
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (written to the audit log)")
	return cmd
}

func newKeyUnlockCmd(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "unlock SERIAL [--reason TEXT]",
		Short: "Bring a Locked or Suspended key back to Reserved with a new activation code",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			code, err := s.svc.UnlockKey(cmd.Context(), s.actor, args[0], reason)
			if err != nil {
				return err
			}
			g.printCode(args[0], code)
			return nil
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (written to the audit log)")
	return cmd
}

func newKeyCompromiseCmd(g *globals) *cobra.Command {
	var reason, confirm, note string
	cmd := &cobra.Command{
		Use:   "compromise SERIAL --reason lost|stolen|broken --confirm SERIAL",
		Short: "Mark a key lost, stolen or broken (final); --confirm repeats the serial",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			r := keys.Reason(reason)
			switch r {
			case keys.ReasonLost, keys.ReasonStolen, keys.ReasonBroken:
			default:
				return fmt.Errorf("--reason %q: say lost, stolen or broken", reason)
			}
			if confirm != args[0] {
				return fmt.Errorf("marking a key compromised is final: repeat its serial with --confirm %s", args[0])
			}
			if err := s.svc.CompromiseKey(cmd.Context(), s.actor, args[0], r, note); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "key %s is now compromised (%s)\n", sanitize.Text(args[0]), r)
			return nil
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "lost, stolen or broken (required)")
	cmd.Flags().StringVar(&confirm, "confirm", "", "the serial again, to confirm")
	cmd.Flags().StringVar(&note, "note", "", "free text for the audit log")
	return cmd
}

func newKeysActivateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "activate [SERIAL]",
		Short: "Activate the plugged-in Reserved key with its activation code",
		Long: `Activate asks for the activation code (without echo on a terminal; read from
standard input otherwise), checks it, gives the plugged-in key its secret over
the protocol's key agreement, and makes the key Active. Three wrong codes lock
the key. Without SERIAL, the one plugged-in key is used.`,
		Args: cobra.MaximumNArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			ctx := cmd.Context()
			g.scanKeys(ctx, s)
			serial, err := g.onePluggedKey(s, args, "keydesk keys activate SERIAL")
			if err != nil {
				return err
			}
			code, err := g.readCode(fmt.Sprintf("activation code for key %s: ", serial))
			if err != nil {
				return err
			}
			res, err := s.svc.ActivateKey(ctx, s.actor, serial, code)
			if err != nil {
				return err
			}
			if res.Activated {
				fmt.Fprintf(g.stdout, "key %s is active\n", sanitize.Text(serial))
			}
			for _, r := range res.Passwords {
				g.printChange(r)
			}
			return nil
		}),
	}
}

// readCode reads a code without echo from the terminal, or a line from
// standard input when it is not a terminal.
func (g *globals) readCode(prompt string) (string, error) {
	code, err := g.readSecret(prompt, "the activation code")
	return strings.TrimSpace(code), err
}

// readSecret reads what without echo from the terminal, or a line from
// standard input when it is not a terminal (without its line end; spaces
// are kept: they may be part of a password).
func (g *globals) readSecret(prompt, what string) (string, error) {
	if f, ok := g.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(g.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.stderr)
		return string(b), err
	}
	if g.lines == nil {
		g.lines = bufio.NewReader(g.stdin)
	}
	line, err := g.lines.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read %s from standard input: %w", what, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newKeysSimulateCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Create and read simulated keys (a test and demo aid)",
		Long: `Simulated keys speak the same protocol as hardware keys, over an in-memory
pipe; each is a file (with its secrets: keep the directory private). With the
global flag --sim-keys DIR every key file in DIR counts as plugged in.`,
	}
	// Both subcommands work on the simulated keys of --dir, as --sim-keys would.
	withDir := func(fn func(cmd *cobra.Command, args []string, s *session) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			g.simKeys = dir
			return g.withSession(fn)(cmd, args)
		}
	}
	var claim string
	newCmd := &cobra.Command{
		Use:   "new --dir DIR [--claim-serial SERIAL]",
		Short: "Create a blank simulated key in DIR and print its serial",
		Long: `New creates a blank simulated key in DIR, with an attestation from DIR's
simulation maker CA (maker-ca.pem, which --sim-keys DIR trusts), and prints its
serial. It is plugged in from then on (its file is DIR/SERIAL.simkey).

--claim-serial SERIAL makes a clone for showing that KeyDesk refuses one: a key
that claims SERIAL but whose attestation names its own serial (printed). Plugged
in, it is shown as an unverified device and nothing about key SERIAL changes.`,
		Args: cobra.NoArgs,
		RunE: withDir(func(cmd *cobra.Command, _ []string, s *session) error {
			serial, err := s.svc.NewSimulatedKey(cmd.Context(), s.actor, claim)
			if err != nil {
				return err
			}
			if claim != "" {
				fmt.Fprintf(g.stdout, "%s (claims serial %s)\n", serial, sanitize.Text(claim))
				return nil
			}
			fmt.Fprintln(g.stdout, serial)
			return nil
		}),
	}
	newCmd.Flags().StringVar(&claim, "claim-serial", "", "make a clone that claims this serial (a test aid)")
	readCmd := &cobra.Command{
		Use:   "read SERIAL --dir DIR",
		Short: "Print what a simulated key holds, read through the protocol with KeyDesk's secret for it",
		Args:  cobra.ExactArgs(1),
		RunE: withDir(func(cmd *cobra.Command, args []string, s *session) error {
			g.scanKeys(cmd.Context(), s)
			c, err := s.svc.InspectKey(cmd.Context(), s.actor, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "serial:    %s\nmodel:     %s\nfirmware:  %s\nstate:     %s\nslots:     %d (%d free)\n",
				sanitize.Text(c.Info.Serial), sanitize.Text(c.Info.Model), sanitize.Text(c.Info.Firmware), sanitize.Text(string(c.Info.State)), c.Info.Slots, c.Info.FreeSlots)
			switch c.Identity {
			case "unverified":
				fmt.Fprintf(g.stdout, "identity:  UNVERIFIED: %s\n", sanitize.Text(c.Why))
			case "unattested":
				fmt.Fprintln(g.stdout, "identity:  no attestation (accepted: require_attestation = false)")
			default:
				fmt.Fprintf(g.stdout, "identity:  attested by %s, attestation key %s\n", sanitize.Text(c.Maker), c.AttestationKey)
			}
			switch {
			case c.Info.State == "blank":
			case !c.Owned:
				fmt.Fprintln(g.stdout, "the key does not hold KeyDesk's secret for it: its slots cannot be read")
			default:
				fmt.Fprintln(g.stdout, "linked:    holds KeyDesk's secret (proved with AUTH)")
				for _, sl := range c.Slots {
					fmt.Fprintf(g.stdout, "slot %d:    %s current=%v pending=%v\n", sl.Slot, sanitize.Text(sl.Login), sl.Current, sl.Pending)
				}
			}
			return nil
		}),
	}
	for _, c := range []*cobra.Command{newCmd, readCmd} {
		c.Flags().StringVar(&dir, "dir", "", "the directory of simulated key files (required)")
		c.MarkFlagRequired("dir")
	}
	cmd.AddCommand(newCmd, readCmd, newKeysTypeCmd(&dir, g))
	return cmd
}
