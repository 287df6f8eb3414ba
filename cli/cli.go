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

	"github.com/spf13/cobra"

	"keydesk/config"
	"keydesk/internal/sanitize"
)

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

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
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
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
	)
	return root
}

func (g *globals) logger() *slog.Logger {
	if !g.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
