//go:build !crashhook

package cli

import "keydesk/app"

// journalHooks are the test hooks of the password journal: none in a
// normal build (see hooks_crash.go).
func journalHooks() []app.Option { return nil }

// crashPoint is where a crashhook build may end the process; nothing here.
func crashPoint(string) {}
