package cli

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"keydesk/config"
	"keydesk/internal/builtinad"
	"keydesk/internal/smtpsink"
	"keydesk/ui"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		users        int
		seed         int64
		noChurn      bool
		churnEvery   time.Duration
		syncInterval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Open the console on a built-in directory of two domains (no AD, no configuration needed)",
		Long: `Demo starts a built-in, AD-like LDAP directory with two domains (corp and
branch) on a random loopback port, with LDAPS and a certificate authority made
for the run, and opens the console on it. The directory is generated from a
seed: nested groups, people in both domains with the same email, people
without email, disabled accounts, non-ASCII names, and a few display names
carrying terminal escape sequences (shown as harmless text).

Invitations are on (up to 2000 users): each person is sent an invitation to
enroll an authenticator app, and a mail sink on this machine takes the mail;
the Invitations pane shows each message, and e enrolls with its code.

Nothing touches your configuration or data: without --data the demo uses a
temporary directory, removed on exit. Unless --no-churn is given, the directory
changes a little every minute, so that the periodic sync has something to show.`,
		Example: `  keydesk demo
  keydesk demo --users 100000
  keydesk demo --data ./demo-data --no-churn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.needTerminal("the demo console"); err != nil {
				return err
			}
			ctx := cmd.Context()
			tuneDemoGC(users)
			d, err := startDemo(ctx, g, demoOptions{users: users, seed: seed, syncInterval: syncInterval})
			if err != nil {
				return err
			}
			defer d.Close()
			if !noChurn {
				go runChurn(ctx, d.dir, churnEvery, seed)
			}
			return g.runConsole(ctx, d.session, ui.RunOptions{Label: "demo", Mailbox: d.mailbox, About: []string{
				"Demo data: " + d.dataDir + " (removed when the demo ends, unless given with --data)",
				"Simulated keys: " + d.simDir + "; from another terminal, plug one in with",
				"  keydesk keys simulate new --dir " + d.simDir,
			}})
		},
	}
	f := cmd.Flags()
	f.IntVar(&users, "users", 300, "number of people in the built-in directory (usable at 100000)")
	f.Int64Var(&seed, "seed", 1, "seed of the generated directory")
	f.BoolVar(&noChurn, "no-churn", false, "keep the demo directory still (by default it changes every --churn-every: a join, a leave, an email change)")
	f.DurationVar(&churnEvery, "churn-every", time.Minute, "how often the demo directory changes")
	f.DurationVar(&syncInterval, "sync-interval", 2*time.Minute, "periodic sync interval in the demo")
	return cmd
}

// demoInviteMax is the largest demo whose people are all invited (an
// email each, to the demo's mail sink); a larger one leaves invitations off.
const demoInviteMax = 2000

type demoOptions struct {
	users        int
	seed         int64
	syncInterval time.Duration
}

// demo is a session over the built-in directory, which it runs.
type demo struct {
	*session
	dir     *builtinad.Server
	sink    *smtpsink.Sink // the demo's mail sink
	dataDir string         // where its database lives
	simDir  string         // where its simulated keys live
	cleanup []func()
}

// Close closes the session, stops the directory and removes the temporary
// data directory.
func (d *demo) Close() {
	if d.session != nil {
		d.session.Close()
	}
	for i := len(d.cleanup) - 1; i >= 0; i-- {
		d.cleanup[i]()
	}
}

// startDemo starts the built-in directory, writes a configuration for it
// into the demo's data directory and opens a session there, with the same
// wiring as every other command.
func startDemo(ctx context.Context, g *globals, o demoOptions) (_ *demo, err error) {
	srv, err := builtinad.Start(ctx, builtinad.Options{Seed: o.seed, Users: o.users})
	if err != nil {
		return nil, fmt.Errorf("start the built-in directory: %w", err)
	}
	d := &demo{dir: srv, cleanup: []func(){func() { srv.Close() }}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	dataDir := g.dataDir
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "keydesk-demo-")
		if err != nil {
			return nil, err
		}
		dataDir = tmp
		d.cleanup = append(d.cleanup, func() { os.RemoveAll(tmp) })
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create demo data directory: %w", err)
	}
	// A local mail sink takes the invitations (kept in DIR/mail; the
	// console's Invitations pane shows them).
	sink, err := smtpsink.Start(smtpsink.Options{Dir: filepath.Join(dataDir, "mail")})
	if err != nil {
		return nil, err
	}
	d.sink = sink
	d.cleanup = append(d.cleanup, func() { sink.Close() })
	invite := o.users <= demoInviteMax
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Written by keydesk demo: the built-in directory of this run.\n[sync]\ninterval = %q\njitter = \"15s\"\n\n", o.syncInterval.String())
	fmt.Fprintf(&sb, "# The demo's own mail sink (on this machine only).\n[mail]\nhost = %q\nport = %d\nsecurity = \"none\"\nfrom = \"KeyDesk demo <keydesk@demo.invalid>\"\n\n", sink.Host(), sink.Port())
	fmt.Fprintf(&sb, "[invitations]\norganisation = \"KeyDesk demo\"\nwhere = \"to the KeyDesk kiosk (in the demo: the Invitations pane, e)\"\n\n")
	for _, dom := range srv.Domains() {
		pwFile := filepath.Join(dataDir, "demo-"+dom.Name+".pw")
		if err := os.WriteFile(pwFile, []byte(dom.AdminPassword), 0o600); err != nil {
			return nil, fmt.Errorf("write demo password file: %w", err)
		}
		fmt.Fprintf(&sb, "[[domain]]\nname = %q\nurls = [%q]\nbase_dn = %q\nbind_dn = %q\nbind_password_file = %q\nca_file = %q\ntls = \"ldaps\"\n\n[domain.invitations]\nenabled = %v\n\n",
			dom.Name, dom.LDAPSURL, dom.BaseDN, dom.AdminUPN, pwFile, srv.CAFile(), invite)
	}
	cfgPath := filepath.Join(dataDir, "keydesk.toml")
	if err := os.WriteFile(cfgPath, []byte(sb.String()), 0o600); err != nil {
		return nil, fmt.Errorf("write demo configuration: %w", err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	// --sim-keys DIR: the demo's simulated keys live there (a folder a
	// second terminal already uses), else in the demo's data.
	d.dataDir, d.simDir = dataDir, g.simKeys
	if d.simDir == "" {
		d.simDir = filepath.Join(dataDir, "simulated-keys")
	}
	d.session, err = g.openSession(ctx, cfg, dataDir, sessionOptions{via: "console", simDir: d.simDir})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// mailbox is what the demo's mail sink received, for the console.
func (d *demo) mailbox(context.Context) ([]ui.MailMessage, error) {
	var out []ui.MailMessage
	for _, r := range d.sink.Messages() {
		p, err := smtpsink.Parse(r.Data)
		if err != nil {
			return nil, err
		}
		to := p.To
		if len(r.To) > 0 {
			to = r.To[0]
		}
		out = append(out, ui.MailMessage{To: to, Subject: p.Subject, Text: p.Text, At: r.At})
	}
	return out, nil
}

// runChurn makes a directory change every interval until ctx ends.
func runChurn(ctx context.Context, srv *builtinad.Server, every time.Duration, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(every):
			srv.Churn(rng)
		}
	}
}

// tuneDemoGC sets the collector for the demo, unless GOGC or GOMEMLIMIT
// say otherwise. The built-in directory shares the process and holds every
// person, most of the heap and unchanging: KeyDesk's soft memory limit
// (main.go) would make the collector run without end, and collecting at
// each doubling of the heap would mark the directory again and again
// while the first syncs read it (a fifth of the demo's CPU at 100,000
// people). The demo collects at five times the live heap instead, within
// 2 GiB (more for directories over 130,000 people: about 16 KiB each).
func tuneDemoGC(users int) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(max(2<<30, int64(users)*16<<10))
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
