// Package cli is KeyDesk's command line (cobra). Each command parses its
// flags, opens a session (session.go: the configuration, the database, the
// operator at this terminal), calls the application layer and prints the
// result, as a table or, with --json, through one helper (output.go).
// `keydesk` alone and `keydesk demo` open the console. Nothing here decides
// anything the application layer decides: permissions, rules and the audit
// log are its.
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"keydesk/config"
	"keydesk/internal/sanitize"
)

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// The exit codes (README, "Commands").
const (
	exitFailed  = 1 // the command failed
	exitUsage   = 2 // the command line was wrong: nothing was done
	exitPartial = 3 // part of the work failed (one domain of two, one person of three)
	exitHeld    = 4 // a sync held removals (the accident guard)
)

// usageError is a command line that cannot run: it is printed with the
// command's usage line and, for an unknown command, what was meant.
type usageError struct {
	cmd     *cobra.Command
	err     error
	suggest []string
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// print writes the error, the usage line and the suggestions.
func (e usageError) print(w io.Writer) {
	fmt.Fprintln(w, "keydesk:", sanitize.Lines(e.err.Error()))
	if len(e.suggest) > 0 {
		fmt.Fprintf(w, "did you mean: %s?\n", strings.Join(e.suggest, ", "))
	}
	if e.cmd != nil {
		fmt.Fprintf(w, "usage: %s\n", e.cmd.UseLine())
		fmt.Fprintf(w, "run %q for more\n", e.cmd.CommandPath()+" --help")
	}
}

var cobraArgCount = regexp.MustCompile(`^accepts (?:between \d+ and )?(\d+) arg\(s\), received (\d+)$|^requires at least (\d+) arg\(s\), only received (\d+)$`)

// argsError says what was wrong with the arguments in the user's terms.
func argsError(c *cobra.Command, args []string, err error) error {
	name := strings.TrimPrefix(c.CommandPath(), "keydesk ")
	if strings.HasPrefix(err.Error(), "unknown command") && !c.HasAvailableSubCommands() {
		return fmt.Errorf("%s takes no arguments, but got %q", name, strings.Join(args, " "))
	}
	if m := cobraArgCount.FindStringSubmatch(err.Error()); m != nil {
		want, got := m[1]+m[3], m[2]+m[4]
		if m[3] != "" {
			want = "at least " + m[3]
		}
		noun := "arguments"
		if strings.HasSuffix(want, " 1") || want == "1" {
			noun = "argument"
		}
		if len(args) == 0 {
			return fmt.Errorf("%s needs %s %s, and got none", name, want, noun)
		}
		return fmt.Errorf("%s needs %s %s, but got %s", name, want, noun, got)
	}
	return err
}

// checkUsage wraps the argument checks of cmd and its subcommands so that
// their refusals are usage errors, with suggestions for an unknown command.
func checkUsage(cmd *cobra.Command) {
	check := cmd.Args
	if check == nil {
		check = cobra.ArbitraryArgs
	}
	cmd.Args = func(c *cobra.Command, args []string) error {
		if c.HasAvailableSubCommands() && len(args) > 0 && !c.Runnable() || c.HasAvailableSubCommands() && len(args) > 0 && check(c, args) != nil {
			return usageError{cmd: c, err: fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath()), suggest: c.SuggestionsFor(args[0])}
		}
		if err := check(c, args); err != nil {
			return usageError{cmd: c, err: argsError(c, args, err)}
		}
		return nil
	}
	cmd.SuggestionsMinimumDistance = 2
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{cmd: c, err: err} })
	for _, sub := range cmd.Commands() {
		checkUsage(sub)
	}
}

// globals are the values of the global flags and where the command reads
// and writes.
type globals struct {
	configPath string
	dataDir    string
	simKeys    string
	verbose    bool
	stdin      io.Reader
	lines      *bufio.Reader // stdin read line by line, when it is not a terminal
	stdout     io.Writer
	stderr     io.Writer
}

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		ue.print(stderr)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "keydesk:", sanitize.Lines(err.Error()))
		return 1
	}
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "keydesk",
		Short: "Active Directory users and hardware keys in one terminal console",
		Long: `KeyDesk syncs employees from one or more Active Directory domains into a local
database and manages their hardware security keys: inventory, assignment with
one-time activation codes, on-site activation, and the key lifecycle.

Run without a command to open the full-screen console on the configured domains;
keydesk demo opens it on a built-in demo directory.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.console(cmd.Context())
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
		newRotateCmd(g),
		newRotationsCmd(g),
		newPasswordCmd(g),
		newServeCmd(g),
		newKioskCmd(g),
		newOperatorsCmd(g),
		newAdminCmd(g),
		newInviteCmd(g),
		newInvitationsCmd(g),
		newEnrollCmd(g),
		newEnrollmentCmd(g),
		newVersionCmd(),
		newInitCmd(g),
	)
	root.Version = versionLine()
	root.SetVersionTemplate("{{.Version}}\n")
	checkUsage(root)
	return root
}

func (g *globals) logger() *slog.Logger {
	if !g.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// versionLine is KeyDesk's version, commit and Go version, from what the Go
// toolchain recorded in the binary.
func versionLine() string {
	version, commit := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified {
			commit += " (modified)"
		}
	}
	return fmt.Sprintf("keydesk %s, commit %s, %s %s/%s", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print KeyDesk's version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
		},
	}
}
