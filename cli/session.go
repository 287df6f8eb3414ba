package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"keydesk/app"
	"keydesk/config"
	"keydesk/internal/sanitize"
	"keydesk/keys"
	"keydesk/keys/simkey"
	"keydesk/keys/usbhid"
	"keydesk/store"
	"keydesk/ui"
)

// session is one opened KeyDesk: the application layer over a configuration
// and a database, the operator at this terminal as the application layer
// knows them, and the simulated keys when there are any.
type session struct {
	svc    *app.Service
	actor  app.Actor
	cfg    *config.Config
	sim    *simkey.Dir // nil without --sim-keys (and outside the demo)
	st     *store.Store
	master app.MasterKeyFile
}

func (s *session) Close() { s.st.Close() }

// sessionOptions say how to open a session.
type sessionOptions struct {
	via    string              // "cli" or "console": how the operator works, for the audit log
	simDir string              // simulated keys' directory ("" = none)
	getenv func(string) string // for the master key (KEYDESK_MASTER_KEY); nil = none
}

// openSession is the one wiring of KeyDesk, for every command, the console
// and the demo: it decides who the local user is as an operator (before
// touching anything), opens the database and the master key, and builds the
// application layer.
func (g *globals) openSession(ctx context.Context, cfg *config.Config, dataDir string, o sessionOptions) (*session, error) {
	actor, err := localActor(cfg, dataDir, o.via)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, filepath.Join(dataDir, store.FileName))
	if err != nil {
		return nil, err
	}
	path, named := keys.MasterKeyPath(dataDir, o.getenv)
	mf := app.MasterKeyFile{Path: path, Named: named}
	mk, err := app.UnlockMasterKey(ctx, st, mf)
	if err != nil {
		st.Close()
		return nil, err
	}
	sess := &session{actor: actor, cfg: cfg, st: st, master: mf}
	makers, err := keys.LoadMakers(cfg.Keys.TrustedMakers)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("[keys] trusted_makers: %w", err)
	}
	opts := []app.Option{app.WithLogger(g.logger()), app.WithMasterKey(mk), app.WithTrustedMakers(makers),
		app.WithAuditHead(filepath.Join(filepath.Dir(path), "audit.head"))}
	if cfg.Audit.Syslog {
		sink, err := syslogSink(cfg.Audit.SyslogAddress)
		if err != nil {
			st.Close()
			return nil, err
		}
		opts = append(opts, app.WithAuditSink(sink))
	}
	if o.simDir != "" {
		if sess.sim, err = simkey.NewDir(o.simDir); err != nil {
			st.Close()
			return nil, err
		}
		// The simulated keys' maker is trusted where they are used: the demo
		// and --sim-keys DIR (a real configuration lists its makers).
		makers.Add(sess.sim.Maker().Cert())
		opts = append(opts, app.WithSimulatedKeys(sess.sim))
	}
	sess.svc = app.New(cfg, st, append(opts, journalHooks()...)...)
	if err := sess.svc.OpenAuditLog(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("open the audit log: %w", err)
	}
	return sess, nil
}

// localActor is the operator that the person running this process is: it
// gathers the facts (who runs it, through sudo or not; who owns the data
// directory and the configuration; the uids of the operators' logins) for
// app.LocalActor, which decides.
func localActor(cfg *config.Config, dataDir, via string) (app.Actor, error) {
	u, err := user.Current()
	if err != nil {
		return app.Actor{}, fmt.Errorf("who is running keydesk: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return app.Actor{}, fmt.Errorf("who is running keydesk: uid %q is not a number", u.Uid)
	}
	me := app.LocalUser{Name: u.Username, UID: uid, SudoUID: -1}
	// sudo sets these; they are believed only in a process that already
	// runs as the data's owner, which could do anything anyway.
	if su, err := strconv.Atoi(os.Getenv("SUDO_UID")); err == nil && os.Getenv("SUDO_USER") != "" {
		me.SudoUID, me.SudoName = su, os.Getenv("SUDO_USER")
	}
	owner, _, err := ownerOf(dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		owner = uid // it does not exist yet: whoever creates it owns it
	case err != nil:
		return app.Actor{}, fmt.Errorf("read the owner of the data directory: %w", err)
	}
	setup := app.LocalSetup{Operators: cfg.Operators, OperatorUIDs: map[string]int{}, ConfigPath: cfg.Path, DataDir: dataDir, OwnerUID: owner}
	if ou, err := user.LookupId(strconv.Itoa(owner)); err == nil {
		setup.OwnerName = ou.Username
	}
	if len(cfg.Operators) > 0 {
		if setup.ConfigOwnerUID, setup.ConfigMode, err = ownerOf(cfg.Path); err != nil {
			return app.Actor{}, fmt.Errorf("read the owner of the configuration: %w", err)
		}
		for _, o := range cfg.Operators {
			if o.OSUser == "" {
				continue
			}
			if ou, err := user.Lookup(o.OSUser); err == nil {
				if id, err := strconv.Atoi(ou.Uid); err == nil {
					setup.OperatorUIDs[o.OSUser] = id
				}
			}
		}
	}
	if via == "serve" {
		return app.ServerActor(setup, me)
	}
	return app.LocalActor(setup, me, via)
}

// resolvedConfigPath is --config, then $KEYDESK_CONFIG, then the default.
func (g *globals) resolvedConfigPath() (path string, explicit bool) {
	if g.configPath != "" {
		return g.configPath, true
	}
	if v := os.Getenv("KEYDESK_CONFIG"); v != "" {
		return v, true
	}
	return config.DefaultPath(), false
}

// loadConfig reads the configuration. A missing default file gives an empty
// configuration (no domains) so that read-only commands still work; a
// missing file that was named explicitly is an error.
func (g *globals) loadConfig() (*config.Config, error) {
	path, explicit := g.resolvedConfigPath()
	cfg, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return config.Parse(path, nil)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("configuration file %s does not exist: create it with keydesk --config %s init (see the README, \"Configuration\"), or point --config at it", path, path)
	}
	return cfg, err
}

func (g *globals) resolvedDataDir(cfg *config.Config) string {
	switch {
	case g.dataDir != "":
		return g.dataDir
	case cfg != nil && cfg.DataDir != "":
		return cfg.DataDir // a relative one is made absolute by config.Parse
	default:
		return config.DefaultDataDir()
	}
}

// open opens the session of a command from the flags and the configuration.
func (g *globals) open(ctx context.Context, via string) (*session, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	return g.openSession(ctx, cfg, g.resolvedDataDir(cfg), sessionOptions{via: via, simDir: g.simKeys, getenv: os.Getenv})
}

// nothingYetError: a command that only reads found no database, and made
// none.
type nothingYetError struct{ dir string }

func (e nothingYetError) Error() string {
	return fmt.Sprintf("nothing here yet: %s holds no KeyDesk database; run keydesk sync to import the configured domains (or keydesk demo to try KeyDesk)", e.dir)
}

// hasDatabase reports whether the data directory holds a database.
func hasDatabase(dataDir string) bool {
	_, err := os.Lstat(filepath.Join(dataDir, store.FileName))
	return err == nil
}

// withReadSession is withSession for a command that only reads: where
// there is no database yet it creates none (nor a master key) and says
// what to run first.
func (g *globals) withReadSession(fn func(cmd *cobra.Command, args []string, s *session) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := g.loadConfig()
		if err != nil {
			return err
		}
		if dir := g.resolvedDataDir(cfg); !hasDatabase(dir) {
			return nothingYetError{dir: dir}
		}
		return g.withSession(fn)(cmd, args)
	}
}

// withSession adapts a command that needs the application layer: it opens
// the session before the command and closes it after.
func (g *globals) withSession(fn func(cmd *cobra.Command, args []string, s *session) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		s, err := g.open(cmd.Context(), "cli")
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(cmd, args, s)
	}
}

// console opens the full-screen console over the configured domains.
func (g *globals) console(ctx context.Context) error {
	if err := g.needTerminal("the console"); err != nil {
		return err
	}
	s, err := g.open(ctx, "console")
	if err != nil {
		return err
	}
	defer s.Close()
	return g.runConsole(ctx, s, ui.RunOptions{})
}

func (g *globals) needTerminal(what string) error {
	if f, ok := g.stdout.(*os.File); !ok || !isatty.IsTerminal(f.Fd()) {
		return fmt.Errorf("%s needs a terminal; for scripts use the commands listed by keydesk --help", what)
	}
	return nil
}

// runConsole shows the console while the background work of a long-lived
// KeyDesk runs: the recovery of password changes cut off, the scheduler
// (periodic sync and due rotations), the watch for changes made by other
// processes, and the keys plugged into this machine.
func (g *globals) runConsole(ctx context.Context, s *session, o ui.RunOptions) error {
	o.Actor = s.actor
	return g.withBackground(ctx, s, func(ctx context.Context) error {
		return ui.Run(ctx, s.svc, o)
	})
}

// withBackground runs fn while the background work of a long-lived
// KeyDesk (the console, the server) runs; once fn returns, the background
// stops and is waited for (the step of a password change in flight
// finishes).
func (g *globals) withBackground(ctx context.Context, s *session, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := g.logger()
	background := []func(){
		func() {
			// Password changes cut off by a crash are taken up at once (those
			// that need a key wait for it).
			if _, err := s.svc.RecoverPasswordChanges(ctx); err != nil && ctx.Err() == nil {
				log.Warn("recover password changes", "err", err)
			}
		},
		func() { s.svc.RunScheduler(ctx) },
		func() { s.svc.WatchChanges(ctx, time.Second) },
		func() { g.feedKeys(ctx, s) },
	}
	done := make(chan struct{}, len(background))
	for _, bg := range background {
		go func() {
			defer func() { done <- struct{}{} }()
			bg()
		}()
	}
	err := fn(ctx)
	cancel()
	for range background {
		<-done
	}
	return err
}

// feedKeys tells the application layer about the keys plugged into this
// machine until ctx ends: USB when this build supports it, and the
// simulated keys.
func (g *globals) feedKeys(ctx context.Context, s *session) {
	log := g.logger()
	report := func(err error) { log.Warn("keys", "err", err) }
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		if s.sim != nil {
			s.sim.Feed(ctx, time.Second, s.svc, report)
		}
	}()
	err := usbhid.Feed(ctx, usbConfig(s.cfg), usbhid.DefaultInterval, s.svc, report)
	switch {
	case errors.Is(err, usbhid.ErrUnsupported):
		log.Info("USB keys are not available in this build", "err", err)
	case err != nil:
		log.Warn("USB keys", "err", err)
	}
	<-ctx.Done()
	<-simDone // the simulated keys are unplugged before the database closes
}

// scanKeys finds the keys plugged in now, for a command that does not keep
// watching; what could not be handled is printed as a warning.
func (g *globals) scanKeys(ctx context.Context, s *session) {
	var errs []error
	if s.sim != nil {
		errs = append(errs, s.sim.Scan(ctx, s.svc)...)
	}
	errs = append(errs, usbhid.Scan(ctx, usbConfig(s.cfg), s.svc)...)
	for _, err := range errs {
		fmt.Fprintf(g.stderr, "keydesk: warning: %s\n", sanitize.Lines(err.Error()))
	}
}

func usbConfig(cfg *config.Config) usbhid.Config {
	k := cfg.Keys
	c := usbhid.Config{VendorID: uint16(k.USBVendorID), ProductID: uint16(k.USBProductID), Interface: usbhid.AnyInterface}
	if k.USBInterface != nil {
		c.Interface = *k.USBInterface
	}
	return c
}
