// Command keydesk is a terminal console that brings Active Directory users,
// hardware security keys and domain passwords under one roof. This file wires
// the pieces together; the work is done by the app, ldapsync and store
// packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"keydesk/app"
	"keydesk/config"
	"keydesk/keys"
	"keydesk/store"
	"keydesk/ui"
)

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// globals are the values of the global flags.
type globals struct {
	configPath string
	dataDir    string
	simKeys    string
	verbose    bool
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(stderr, "keydesk:", err)
		return 1
	}
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "keydesk",
		Short: "Active Directory users, hardware keys and domain passwords in one terminal console",
		Long: `KeyDesk syncs employees from one or more Active Directory domains into a local
database, manages their hardware security keys and rotates their domain passwords.

Run without a command to open the full-screen console on the configured domains;
keydesk demo opens it on a built-in demo directory.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.console(cmd.Context(), "")
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", "", "configuration file (default $KEYDESK_CONFIG or "+config.DefaultPath()+")")
	pf.StringVar(&g.dataDir, "data", "", "data directory (default data_dir from the configuration or "+config.DefaultDataDir()+")")
	pf.StringVar(&g.simKeys, "sim-keys", "", "treat every simulated key file in this directory as plugged in (a test and demo aid)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log what is being done to standard error")
	root.AddCommand(
		newSyncCmd(g),
		newEmployeesCmd(g),
		newAuditCmd(g),
		newDoctorCmd(g),
		newDemoCmd(g),
		newKeysCmd(g),
	)
	return root
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
		empty, perr := config.Parse(path, nil)
		if perr != nil {
			return nil, perr
		}
		return empty, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("configuration file %s does not exist: create it (see the README, \"Configuration\") or point --config at it", path)
	}
	return cfg, err
}

func (g *globals) resolvedDataDir(cfg *config.Config) string {
	switch {
	case g.dataDir != "":
		return g.dataDir
	case cfg != nil && cfg.DataDir != "":
		if filepath.IsAbs(cfg.DataDir) || cfg.Path == "" {
			return cfg.DataDir
		}
		return filepath.Join(filepath.Dir(cfg.Path), cfg.DataDir)
	default:
		return config.DefaultDataDir()
	}
}

func (g *globals) logger() *slog.Logger {
	if !g.verbose {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open loads the configuration, opens the database and builds the service.
func (g *globals) open(ctx context.Context) (*app.Service, func(), error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	dataDir := g.resolvedDataDir(cfg)
	st, err := store.Open(ctx, filepath.Join(dataDir, store.FileName))
	if err != nil {
		return nil, nil, err
	}
	mk, err := keys.LoadOrCreateMasterKey(dataDir, os.Getenv)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	opts := []app.Option{app.WithLogger(g.logger()), app.WithMasterKey(mk)}
	if g.simKeys != "" {
		opts = append(opts, app.WithSimulatedKeys(g.simKeys))
	}
	svc := app.New(cfg, st, opts...)
	return svc, func() { st.Close() }, nil
}

// console opens the full-screen console over the configured domains, with
// the periodic sync running in the background while it is open.
func (g *globals) console(ctx context.Context, label string) error {
	if f, ok := g.stdout.(*os.File); !ok || !isTerminal(f) {
		return fmt.Errorf("the console needs a terminal; for scripts use the commands listed by keydesk --help")
	}
	svc, closeFn, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	return g.runConsole(ctx, svc, label, g.simKeys)
}

func isTerminal(f *os.File) bool { return isatty.IsTerminal(f.Fd()) }

// runConsole shows the console with the periodic sync and the key watchers
// running in the background.
func (g *globals) runConsole(ctx context.Context, svc *app.Service, label, simDir string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.keyWatchers(ctx, svc, simDir)
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunScheduler(ctx)
	}()
	a := cliActor()
	a.Name = strings.Replace(a.Name, "cli:", "console:", 1)
	err := ui.Run(ctx, svc, ui.RunOptions{Actor: a, Label: label})
	cancel()
	<-done
	return err
}

// withService adapts a command that needs the service: it opens the
// configuration and the database before the command and closes them after.
func (g *globals) withService(fn func(cmd *cobra.Command, args []string, svc *app.Service) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		svc, closeFn, err := g.open(cmd.Context())
		if err != nil {
			return err
		}
		defer closeFn()
		return fn(cmd, args, svc)
	}
}

// cliActor is the person at this terminal: the command line runs with the
// rights of whoever can read the configuration and the database.
func cliActor() app.Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return app.Actor{Name: "cli:" + name, Role: app.RoleAdmin}
}
