//go:build crashhook

package cli

import (
	"os"

	"keydesk/app"
)

// crashExitCode is how a binary built with -tags crashhook ends when it
// crashes on purpose.
const crashExitCode = 97

// journalHooks, in a binary built with -tags crashhook (the tests' only),
// end the process at the point of a password change that KEYDESK_CRASH_AT
// names, as a crash would: nothing more is written, nothing is cleaned up.
func journalHooks() []app.Option {
	at := os.Getenv("KEYDESK_CRASH_AT")
	if at == "" {
		return nil
	}
	return []app.Option{app.WithJournalHook(func(_ int64, point string) error {
		if point == at {
			os.Exit(crashExitCode)
		}
		return nil
	})}
}

// crashPoint ends the process when KEYDESK_CRASH_AT names this point (e.g.
// "invitations-decided": after the invitations were committed, before the
// mail goes).
func crashPoint(name string) {
	if os.Getenv("KEYDESK_CRASH_AT") == name {
		os.Exit(crashExitCode)
	}
}
