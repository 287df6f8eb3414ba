//go:build !crashhook

package cli

import "keydesk/app"

// journalHooks are the test hooks of the password journal: none in a
// normal build (see hooks_crash.go).
func journalHooks() []app.Option { return nil }
