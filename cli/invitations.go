package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"keydesk/app"
	"keydesk/enroll"
	"keydesk/internal/sanitize"
)

// The commands of import-only employees: invite, invitations, enroll and
// enrollment reset.

// deliverNow sends the outbox once, after a command that put mail in it
// (the console's scheduler retries what fails), and says what happened.
func (g *globals) deliverNow(ctx context.Context, s *session, quiet bool) app.MailReport {
	crashPoint("invitations-decided")
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rep, err := s.svc.DeliverMail(ctx, s.actor)
	if err != nil {
		fmt.Fprintf(g.stderr, "keydesk: sending invitations: %s\n", sanitize.Lines(err.Error()))
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(g.stderr, "keydesk: invitation to %s\n", sanitize.Lines(e))
	}
	if !quiet && rep.Sent+rep.Retry+rep.GaveUp > 0 {
		fmt.Fprintf(g.stdout, "mail: %s sent", plural(rep.Sent, "invitation"))
		if rep.Retry > 0 {
			fmt.Fprintf(g.stdout, ", %d to retry (a running console or keydesk serve retries them; or run keydesk invitations send)", rep.Retry)
		}
		if rep.GaveUp > 0 {
			fmt.Fprintf(g.stdout, ", %d given up (see keydesk invitations)", rep.GaveUp)
		}
		fmt.Fprintln(g.stdout)
	}
	return rep
}

func countInvited(res []app.InviteResult) int {
	n := 0
	for _, r := range res {
		if r.Invited {
			n++
		}
	}
	return n
}

// partial is the exit of a command over several items whose failures were
// printed one by one: 3 when some succeeded, 1 when none did.
func partial(err error, all, ok int) error {
	switch {
	case err == nil:
		return nil
	case ok > 0:
		return exitError{code: exitPartial}
	case all > 0:
		return exitError{code: exitFailed}
	}
	return err
}

// plural counts what in English: "1 key", "2 keys", "3 entries".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	switch {
	case strings.HasSuffix(what, "y") && !strings.HasSuffix(what, "ey"):
		what = what[:len(what)-1] + "ie"
	case strings.HasSuffix(what, "s"), strings.HasSuffix(what, "sh"), strings.HasSuffix(what, "ch"):
		what += "e"
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func newInviteCmd(g *globals) *cobra.Command {
	var resend, asJSON bool
	cmd := &cobra.Command{
		Use:   "invite [--resend] EMAIL...",
		Short: "Send people an invitation to enroll an authenticator app (a one-time code by email)",
		Long: `Invite gives each person (email or employee id) a new one-time enrollment
code and emails it with instructions; they enroll an authenticator app with it
at the kiosk, with an operator, or with keydesk enroll. A person with an
invitation still in force is left alone: --resend replaces it (the earlier code
stops working).

The email goes at once; if the mail server cannot take it now, it stays in the
outbox and a running console or keydesk serve retries it with backoff.`,
		Example: `  keydesk invite ann@example.com ben@example.com
  keydesk invite --resend ann@example.com`,
		Args: cobra.MinimumNArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			res, err := s.svc.Invite(cmd.Context(), s.actor, args, resend)
			if res == nil && err != nil {
				return err
			}
			rep := g.deliverNow(cmd.Context(), s, asJSON)
			if asJSON {
				if jerr := printJSON(g.stdout, map[string]any{"invitations": res, "mail": rep}); jerr != nil {
					return jerr
				}
			} else {
				for _, r := range res {
					if r.Invited {
						fmt.Fprintf(g.stdout, "invited %s (the code works until %s)\n", sanitize.Text(r.Email), r.ExpiresAt.Local().Format("2006-01-02 15:04"))
					} else {
						fmt.Fprintf(g.stderr, "keydesk: %s: %s\n", sanitize.Text(r.Email), sanitize.Lines(r.Error))
					}
				}
			}
			return partial(err, len(res), countInvited(res))
		}),
	}
	cmd.Flags().BoolVar(&resend, "resend", false, "replace an invitation still in force with a new code")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

func newInvitationsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "invitations [--json]",
		Short: "Show who was invited, when, and whether the mail went, failed or was used to enroll",
		Args:  cobra.NoArgs,
		RunE: g.withReadSession(func(cmd *cobra.Command, _ []string, s *session) error {
			ivs, err := s.svc.Invitations(cmd.Context(), s.actor)
			if err != nil {
				return err
			}
			return g.emit(asJSON, ivs, func() { printInvitations(g, ivs) })
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as a JSON array")
	send := &cobra.Command{
		Use:   "send",
		Short: "Send the invitations waiting in the outbox now (retries included)",
		Args:  cobra.NoArgs,
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			rep := g.deliverNow(cmd.Context(), s, false)
			if rep.Sent+rep.Retry+rep.GaveUp == 0 {
				fmt.Fprintf(g.stdout, "nothing to send now (%d waiting for a later try)\n", rep.Pending)
			}
			if rep.Retry+rep.GaveUp > 0 {
				return exitError{code: 1}
			}
			return nil
		}),
	}
	cmd.AddCommand(send)
	return cmd
}

func printInvitations(g *globals, ivs []app.InvitationView) {
	tw := table(g.stdout)
	fmt.Fprintln(tw, "NAME\tEMAIL\tSTATE\tINVITED\tBY\tEXPIRES\tDETAIL")
	for _, v := range ivs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sanitize.Text(v.Name), sanitize.Text(v.Email), v.State,
			v.InvitedAt.Local().Format("2006-01-02 15:04"), sanitize.Text(v.InvitedBy), v.ExpiresAt.Local().Format("2006-01-02 15:04"), sanitize.Text(v.Detail))
	}
	tw.Flush()
	fmt.Fprintln(g.stdout, plural(len(ivs), "invitation"))
}

func newEnrollCmd(g *globals) *cobra.Command {
	var printURI bool
	var totp string
	cmd := &cobra.Command{
		Use:   "enroll CODE [--print-uri | --totp DIGITS]",
		Short: "Enroll an authenticator app with the code of an invitation",
		Long: `Enroll checks the enrollment code of an invitation and shows a QR code; scan
it with any authenticator app and type the 6 digits the app then shows. From
then on a self-service password change asks for the app's code.

--print-uri prints the otpauth:// URI instead of the QR code (for scripts and
screen readers), then reads the app's code from standard input. --totp confirms
a QR code shown before with the app's code, without showing a new one.`,
		Example: `  keydesk enroll ABCD-EFGH-IJKL-MNOP-QRST-UVWX
  keydesk enroll ABCD-EFGH-IJKL-MNOP-QRST-UVWX --print-uri
  keydesk enroll ABCD-EFGH-IJKL-MNOP-QRST-UVWX --totp 123456`,
		Args: cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			ctx := cmd.Context()
			if totp == "" {
				st, err := s.svc.BeginEnrollment(ctx, s.actor, args[0])
				if err != nil {
					return err
				}
				g.showEnrollment(st, printURI)
				if totp, err = g.readSecret("Type the 6 digits your authenticator app shows: ", "the authenticator's code"); err != nil {
					return fmt.Errorf("%w; the QR code stays valid: confirm later with keydesk enroll CODE --totp DIGITS", err)
				}
			}
			ev, err := s.svc.ConfirmEnrollment(ctx, s.actor, args[0], strings.TrimSpace(totp))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "authenticator enrolled for %s\n", sanitize.Text(emailOf(ev)))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&printURI, "print-uri", false, "print the otpauth:// URI instead of drawing the QR code")
	cmd.Flags().StringVar(&totp, "totp", "", "confirm with the authenticator's current code")
	cmd.MarkFlagsMutuallyExclusive("print-uri", "totp")
	return cmd
}

func emailOf(ev app.EmployeeView) string {
	if ev.Email != nil {
		return *ev.Email
	}
	return fmt.Sprint(ev.ID)
}

// showEnrollment prints the QR code (or the URI) of a new authenticator.
func (g *globals) showEnrollment(st app.EnrollmentStart, printURI bool) {
	if printURI {
		fmt.Fprintln(g.stdout, st.URI)
		return
	}
	modules, err := enroll.QR(st.URI)
	// On a terminal, the QR code must fit it; a file or a pipe takes it
	// whole.
	width, height := len(modules), len(modules)
	if f, ok := g.stdout.(*os.File); ok {
		if w, h, terr := term.GetSize(int(f.Fd())); terr == nil {
			width, height = w, h
		}
	}
	fmt.Fprintf(g.stdout, "Enrolling %s <%s>.\n", sanitize.Text(st.Name), sanitize.Text(st.Email))
	if err == nil && len(modules) <= width && (len(modules)+1)/2+3 <= height {
		// Light modules drawn: a terminal shows light text on dark.
		fmt.Fprintln(g.stdout, strings.Join(enroll.HalfBlocks(modules, true), "\n"))
		fmt.Fprintln(g.stdout, "Scan this QR code with your authenticator app.")
		return
	}
	fmt.Fprintf(g.stdout, "The terminal is too small for the QR code. In your authenticator app choose\n\"enter a setup key\" and type:\n  account: %s\n  key:     %s\n  (time-based, 6 digits, every 30 seconds)\n",
		sanitize.Text(st.Issuer+": "+st.Email), groupsOf4(st.Secret.Base32()))
}

func groupsOf4(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func newEnrollmentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enrollment",
		Short: "Manage people's authenticator enrollments",
	}
	reset := &cobra.Command{
		Use:   "reset EMAIL",
		Short: "Forget a person's authenticator (they enroll again with a new invitation)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			ev, err := s.svc.ResetEnrollment(cmd.Context(), s.actor, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "the authenticator of %s is reset; send a new invitation with: keydesk invite --resend %s\n", sanitize.Text(emailOf(ev)), sanitize.Text(emailOf(ev)))
			return nil
		}),
	}
	cmd.AddCommand(reset)
	return cmd
}
