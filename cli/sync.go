package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"keydesk/app"
	"keydesk/internal/sanitize"
	"keydesk/ldapsync"
)

func newSyncCmd(g *globals) *cobra.Command {
	var (
		domains       []string
		full          bool
		allowRemovals bool
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Sync employees from the configured Active Directory domains",
		Long: `Sync reads the members of each domain's sync group (nested groups included)
and of its password group, and merges them into the local database. Domains
sync concurrently and independently; a domain's sync is all or nothing.

If one sync would mark more than the configured share of a domain's accounts
as leavers, those removals are held; run again with --allow-removals to apply
them.`,
		Example: `  keydesk sync
  keydesk sync --domain corp --full
  keydesk sync --allow-removals --json`,
		Args: cobra.NoArgs,
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			req := app.SyncRequest{Actor: s.actor, Domains: domains, Full: full, AllowRemovals: allowRemovals}
			bar := newSyncProgress(g.stderr)
			switch {
			case asJSON:
			case g.verbose:
				req.Progress = func(domain string, p ldapsync.Progress) {
					fmt.Fprintf(g.stderr, "%s: %s: page %d, %d entries\n", domain, p.Phase, p.Pages, p.Entries)
				}
			case bar != nil:
				// On a terminal: one line that shows the sync going.
				req.Progress = bar.update
			}
			rep, err := s.svc.Sync(cmd.Context(), req)
			if req.Progress != nil && bar != nil && !g.verbose {
				bar.done() // erased before the report is printed
			}
			if err != nil {
				return err
			}

			if err := g.emit(asJSON, rep, func() { printSyncReport(g, rep) }); err != nil {
				return err
			}
			for _, d := range rep.Domains {
				if d.Invited > 0 {
					// The invitations this sync decided go now; what
					// fails stays in the outbox for the scheduler.
					g.deliverNow(cmd.Context(), s, asJSON)
					break
				}
			}
			return syncExit(g, rep, asJSON)
		}),
	}
	f := cmd.Flags()
	f.StringArrayVar(&domains, "domain", nil, "sync only this domain (repeat for several)")
	f.BoolVar(&full, "full", false, "read every attribute of every member, ignoring the high-water mark")
	f.BoolVar(&allowRemovals, "allow-removals", false, "apply removals that the accident guard would hold")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}

// syncExit is the exit of a sync: 1 when every domain failed, 3 when some
// did, 4 when removals were held (README, "Commands").
func syncExit(g *globals, rep app.SyncReport, asJSON bool) error {
	held := 0
	for _, d := range rep.Domains {
		held += d.Held
	}
	switch n := len(rep.Failed()); {
	case n > 0:
		if !asJSON {
			fmt.Fprintf(g.stderr, "keydesk: %d of %d domains failed\n", n, len(rep.Domains))
		}
		if n < len(rep.Domains) {
			return exitError{code: exitPartial}
		}
		return exitError{code: exitFailed}
	case held > 0:
		return exitError{code: exitHeld}
	}
	return nil
}

func people(n int) string {
	if n == 1 {
		return "1 newly imported person"
	}
	return fmt.Sprintf("%d newly imported people", n)
}

func printSyncReport(g *globals, rep app.SyncReport) {
	tw := table(g.stdout)
	fmt.Fprintln(tw, "DOMAIN\tRESULT\tMODE\tMEMBERS\tADDED\tUPDATED\tMERGED\tREMOVED\tHELD\tUNCHANGED\tDURATION")
	for _, d := range rep.Domains {
		if !d.OK {
			fmt.Fprintf(tw, "%s\tFAILED\t\t\t\t\t\t\t\t\t%s\n", sanitize.Text(d.Domain), d.Duration.Round(time.Millisecond))
			continue
		}
		fmt.Fprintf(tw, "%s\tok\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", d.Domain, d.Mode, d.Members, d.Added, d.Updated, d.Merged, d.Removed, d.Held, d.Unchanged, d.Duration.Round(time.Millisecond))
	}
	tw.Flush()
	for _, d := range rep.Domains {
		switch {
		case !d.OK:
			fmt.Fprintf(g.stdout, "\n%s failed: %s\n", d.Domain, sanitize.Text(d.Error))
			if d.Hint != "" {
				fmt.Fprintf(g.stdout, "  fix: %s\n", d.Hint)
			}
			fmt.Fprintln(g.stdout, "  nothing was changed in the database for this domain")
		case d.Held > 0:
			fmt.Fprintf(g.stdout, "\n%s: %s held by the accident guard (more than the allowed share of the domain's accounts left at once).\n", d.Domain, plural(d.Held, "removal"))
			fmt.Fprintf(g.stdout, "  check the directory; if they are right, apply them with: keydesk sync --domain %s --allow-removals\n", d.Domain)
		}
		if d.Invited > 0 {
			fmt.Fprintf(g.stdout, "\n%s: %s invited to enroll an authenticator (see keydesk invitations)\n", d.Domain, people(d.Invited))
		}
		if d.OK && d.FullReason != "" && d.FullReason != "requested" && d.FullReason != "first sync" {
			fmt.Fprintf(g.stdout, "\n%s: full sync because %s\n", d.Domain, d.FullReason)
		}
	}
}
