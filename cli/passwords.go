package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"keydesk/app"
	"keydesk/internal/sanitize"
	"keydesk/keys/simkey"
)

// The domain password commands: rotate, password set|generate|reveal,
// rotations, and keys simulate type.

func newRotateCmd(g *globals) *cobra.Command {
	var domain string
	var due bool
	cmd := &cobra.Command{
		Use:   "rotate [--due | EMPLOYEE...] [--domain NAME]",
		Short: "Rotate the domain passwords of employees now (on the key and in AD)",
		Long: `Rotate gives each managed account of the employees (id or email; those in a
domain's password group) a new generated password, on the employee's key and in
AD. A key that is not plugged in gets it when it next is: the rotation waits for
it, or, in a domain with offline = "rotate-and-hold", AD is changed now and the
new password is held, sealed, until the key connects. See keydesk rotations.

--due runs, now, the rotations that are due (as the scheduler does every minute
in a running console), and carries on the changes under way that can go on
without a person.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if due == (len(args) > 0) {
				return fmt.Errorf("name the employees to rotate, or --due (not both)")
			}
			return nil
		},
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			ctx := cmd.Context()
			g.scanKeys(ctx, s)
			if due {
				rs, err := s.svc.RotateDue(ctx, s.actor, domain)
				for _, r := range rs {
					g.printChange(r)
				}
				if len(rs) == 0 && err == nil {
					fmt.Fprintln(g.stdout, "no rotation is due")
				}
				return err
			}
			var failed int
			for _, e := range args {
				rs, err := s.svc.RotatePasswords(ctx, s.actor, e, domain)
				for _, r := range rs {
					g.printChange(r)
				}
				if err != nil {
					failed++
					fmt.Fprintf(g.stderr, "keydesk: %s: %s\n", sanitize.Text(e), sanitize.Lines(err.Error()))
				}
			}
			if failed > 0 {
				fmt.Fprintf(g.stderr, "keydesk: %d of %d employees could not be rotated\n", failed, len(args))
				return partial(errors.New("not rotated"), len(args), len(args)-failed)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&domain, "domain", "", "only the accounts of this domain")
	cmd.Flags().BoolVar(&due, "due", false, "rotate what is due now")
	return cmd
}

func newRotationsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotations [--json]",
		Short: "Show the managed accounts' passwords (last changed, next due, waiting, failed) and the recent changes",
		Args:  cobra.NoArgs,
		RunE: g.withReadSession(func(cmd *cobra.Command, _ []string, s *session) error {
			rep, err := s.svc.Rotations(cmd.Context(), s.actor)
			if err != nil {
				return err
			}
			return g.emit(asJSON, rep, func() { g.printRotations(rep) })
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func (g *globals) printRotations(rep app.RotationReport) {
	now := time.Now()
	w := table(g.stdout)
	fmt.Fprintln(w, "ACCOUNT\tEMPLOYEE\tKEY\tLAST CHANGED\tNEXT DUE\tSTATE")
	for _, a := range rep.Accounts {
		changed, due := "never", "now"
		if a.Changed != nil {
			changed = a.Changed.Local().Format("2006-01-02 15:04")
		}
		if a.NextDue.After(now) {
			due = a.NextDue.Local().Format("2006-01-02 15:04")
		}
		if a.State == app.RotationNoKey {
			due = "-"
		}
		state := a.State
		if a.Detail != "" {
			state += ": " + a.Detail
		}
		if a.Since != nil {
			state += " (since " + a.Since.Local().Format("2006-01-02 15:04") + ")"
		}
		key := a.Key
		if key == "" {
			key = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", sanitize.Text(a.Account), sanitize.Text(a.Employee), sanitize.Text(key), changed, due, sanitize.Lines(state))
	}
	w.Flush()
	if len(rep.Accounts) == 0 {
		fmt.Fprintln(g.stdout, "no managed accounts (members of a domain's password group with an email, synced)")
	}
	if rep.Scheduler == "" {
		fmt.Fprintln(g.stdout, "\nno scheduler is running: due rotations run in a running console, or with keydesk rotate --due")
	} else {
		fmt.Fprintf(g.stdout, "\nscheduler: %s\n", sanitize.Text(rep.Scheduler))
	}
	if len(rep.Recent) == 0 {
		return
	}
	fmt.Fprintln(g.stdout, "\nrecent changes:")
	w = table(g.stdout)
	fmt.Fprintln(w, "ID\tACCOUNT\tKIND\tSTEP\tBY\tUPDATED\tERROR")
	for _, c := range rep.Recent {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, sanitize.Text(c.Account), c.Kind, c.Step, sanitize.Text(c.Actor), c.Updated.Local().Format("2006-01-02 15:04:05"), sanitize.Lines(c.Error))
	}
	w.Flush()
}

// printChange prints one line per change: the account, how far it got and
// what it waits for or why it failed.
func (g *globals) printChange(r app.ChangeResult) {
	switch {
	case r.Done():
		fmt.Fprintf(g.stdout, "%s: new password on the key and in AD (change %d, %s)\n", sanitize.Text(r.Account), r.ID, r.Kind)
	case r.Waiting != "":
		fmt.Fprintf(g.stdout, "%s: %s, waiting for %s (change %d)\n", sanitize.Text(r.Account), r.Step, sanitize.Lines(r.Waiting), r.ID)
	case r.Err != "":
		fmt.Fprintf(g.stdout, "%s: %s: %s (change %d)\n", sanitize.Text(r.Account), r.Step, sanitize.Lines(r.Err), r.ID)
	default:
		fmt.Fprintf(g.stdout, "%s: %s (change %d)\n", sanitize.Text(r.Account), r.Step, r.ID)
	}
}

func newPasswordCmd(g *globals) *cobra.Command {
	var domain string
	var reveal bool
	cmd := &cobra.Command{
		Use:   "password",
		Short: "Set, generate or reveal the domain password of an employee's account",
	}
	set := &cobra.Command{
		Use:   "set EMPLOYEE [--domain NAME]",
		Short: "Set a password you type (without echo; or one line of standard input) on the key and in AD",
		Long: `Set checks the password against the account's policy (the domain's, or its
fine-grained policy) before anything is written, then writes it to the
employee's key and to AD, as a rotation does. --domain names the account when
the employee has managed accounts in several domains.`,
		Args: cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			ctx := cmd.Context()
			g.scanKeys(ctx, s)
			pw, err := g.readSecret(fmt.Sprintf("new password for %s: ", sanitize.Text(args[0])), "the password")
			if err != nil {
				return err
			}
			r, err := s.svc.SetPassword(ctx, s.actor, args[0], domain, pw)
			if r.ID != 0 {
				g.printChange(r)
			}
			return err
		}),
	}
	generate := &cobra.Command{
		Use:   "generate EMPLOYEE [--domain NAME] [--reveal]",
		Short: "Generate a new password on the key and in AD; --reveal shows it (admin only, audited)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			ctx := cmd.Context()
			g.scanKeys(ctx, s)
			r, pw, err := s.svc.GeneratePassword(ctx, s.actor, args[0], domain, reveal)
			if r.ID != 0 {
				g.printChange(r)
			}
			if pw != "" {
				fmt.Fprintf(g.stdout, "password (revealed; this is in the audit log): %s\n", pw)
			}
			return err
		}),
	}
	generate.Flags().BoolVar(&reveal, "reveal", false, "print the generated password (needs password.reveal; audited)")
	revealCmd := &cobra.Command{
		Use:   "reveal EMPLOYEE [--domain NAME]",
		Short: "Print the password AD has and the journal holds until the key gets it (rotate-and-hold; admin only, audited)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			pw, err := s.svc.RevealPassword(cmd.Context(), s.actor, args[0], domain)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "password (revealed; this is in the audit log): %s\n", pw)
			return nil
		}),
	}
	var on string
	change := &cobra.Command{
		Use:   "change [SERIAL] [--on key|both] [--domain NAME]",
		Short: "A person changes their own password at their plugged-in key: on the key only, or on the key and in AD",
		Long: `Change is the person at the key changing their own password. They prove who they
are with the key's PIN, or, when the key has none, with their current password.

--on key (the default): they type the password AD already has (changed elsewhere,
say at a workstation); KeyDesk proves it with a bind as them before writing it to
the key, so a key never holds a wrong password.
--on both: the new password goes to the key and to AD, as their own change (bound
as them), so the domain's history and minimum age apply; a refusal says why and
leaves the key as it was.

Asked without echo on a terminal; otherwise three lines of standard input: the
PIN (empty when the key has none), the current password (empty when the PIN is
given) and the new password, then, for a person who enrolled an authenticator
app (keydesk enroll), its current code. Without SERIAL, the one plugged-in key is
used.`,
		Args: cobra.MaximumNArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			ctx := cmd.Context()
			g.scanKeys(ctx, s)
			serial, err := g.onePluggedKey(s, args, "keydesk password change SERIAL")
			if err != nil {
				return err
			}
			var req = app.SelfChange{Serial: serial, Domain: domain, On: on}
			if req.PIN, err = g.readSecret("the key's PIN (empty if it has none): ", "the PIN"); err != nil {
				return err
			}
			if req.PIN == "" {
				if req.Current, err = g.readSecret("your current password: ", "the current password"); err != nil {
					return err
				}
			}
			prompt := "the new password: "
			if on == app.SelfKeyOnly {
				prompt = "the password AD has now: "
			}
			if req.New, err = g.readSecret(prompt, "the new password"); err != nil {
				return err
			}
			r, err := s.svc.ChangeOwnPassword(ctx, s.actor, req)
			if errors.Is(err, app.ErrNeedAuthenticator) {
				// A person who enrolled an authenticator app proves it too.
				if req.TOTP, err = g.readSecret("the 6 digits your authenticator app shows: ", "the authenticator's code"); err != nil {
					return err
				}
				r, err = s.svc.ChangeOwnPassword(ctx, s.actor, req)
			}
			if r.ID != 0 {
				g.printChange(r)
			}
			return err
		}),
	}
	change.Flags().StringVar(&on, "on", app.SelfKeyOnly, "key (the key only: AD already has it) or both (the key and AD)")
	for _, c := range []*cobra.Command{set, generate, revealCmd, change} {
		c.Flags().StringVar(&domain, "domain", "", "the account's domain (needed when the employee has managed accounts in several)")
	}
	cmd.AddCommand(set, generate, revealCmd, change)
	return cmd
}

// onePluggedKey is the serial named, or the one key plugged in.
func (g *globals) onePluggedKey(s *session, args []string, usage string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	plugged := s.svc.PluggedKeys()
	switch len(plugged) {
	case 0:
		return "", fmt.Errorf("no key is plugged in (USB, or --sim-keys DIR): plug the key in and try again")
	case 1:
		return plugged[0], nil
	}
	return "", fmt.Errorf("%d keys are plugged in (%s): say which with %s", len(plugged), strings.Join(plugged, ", "), usage)
}

// newKeysTypeCmd is keys simulate type: what a simulated key would type.
func newKeysTypeCmd(dir *string, g *globals) *cobra.Command {
	var pin string
	cmd := &cobra.Command{
		Use:   "type SERIAL --dir DIR [--pin PIN]",
		Short: "Print what a simulated key would type at a login screen: each slot's account and current password",
		Long: `Type prints, for each used slot of the simulated key DIR/SERIAL.simkey, the login
and the current password that the key would type at a login screen, as a person
pressing its button would get them: a test and demo aid, so that a script can
log in (bind to AD) with the key's password. It reads the key file, which holds
the simulated key's secrets; a key with a PIN needs --pin.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			serial := args[0]
			if strings.ContainsAny(serial, `/\`) || serial == "" || strings.HasPrefix(serial, ".") {
				return fmt.Errorf("%q is not a serial", serial)
			}
			path := filepath.Join(*dir, serial+".simkey")
			k, err := simkey.Load(path)
			if err != nil {
				return fmt.Errorf("simulated key %s: %w", serial, err)
			}
			k.SetAutoSave(path) // a wrong PIN counts
			typed, err := k.Type(pin)
			if err != nil {
				return fmt.Errorf("simulated key %s: %w", serial, err)
			}
			if len(typed) == 0 {
				fmt.Fprintln(g.stderr, "the key holds no credential")
			}
			for _, t := range typed {
				fmt.Fprintf(g.stdout, "%d\t%s\t%s\n", t.Slot, sanitize.Text(t.Login), sanitize.Text(t.Password))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pin, "pin", "", "the key's PIN, when it has one")
	cmd.Flags().StringVar(dir, "dir", "", "the directory of simulated key files (required)")
	cmd.MarkFlagRequired("dir")
	return cmd
}
