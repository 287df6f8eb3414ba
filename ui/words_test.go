package ui

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"keydesk/app"
	keylife "keydesk/keys"
	"keydesk/rotation"
	"keydesk/store"
)

// TestStatusAndActionWords: the words the console shows for key statuses,
// reasons and audit actions, and that every status, reason, key action,
// permission (a refusal is recorded under its name) and password step has
// words, so that no identifier reaches the screen.
func TestStatusAndActionWords(t *testing.T) {
	statuses := []struct{ status, reason, want string }{
		{"ready", "", "ready"},
		{"reserved", "", "reserved"},
		{"reserved", "unlock", "reserved, new code issued"},
		{"active", "", "active"},
		{"locked", "invalid-activation-code", "locked, too many wrong codes"},
		{"locked", "invalid-pin", "locked, its PIN is blocked"},
		{"suspended", "suspension", "suspended"},
		{"deactivated", "withdrawal", "deactivated, withdrawn"},
		{"deactivated", "left-sync-group", "deactivated, its employee left the sync group"},
		{"deactivated", "employee-removed", "deactivated, its employee was removed"},
		{"compromised", "stolen", "compromised, stolen"},
		{app.StatusUnverifiedDevice, "", "unverified device"},
		{"some-new-status", "some-new-reason", "some new status, some new reason"},
	}
	for _, tt := range statuses {
		if got := keyStatusWords(tt.status, tt.reason); got != tt.want {
			t.Errorf("keyStatusWords(%q, %q) = %q, want %q", tt.status, tt.reason, got, tt.want)
		}
	}
	actions := []struct{ action, target, want string }{
		{"key.assign", "key:KD-1", "assign key KD-1"},
		{"key.renew-code", "key:KD-1", "issue a new activation code for key KD-1"},
		{"key.fail-code-lock", "key:KD-1", "lock key KD-1 after too many wrong codes"},
		{"key.pin-lock", "key:KD-1", "lock key KD-1: its PIN is blocked"},
		{"key.suspend", "key:KD-1", "suspend key KD-1"},
		{"key.compromise", "key:KD-1", "mark key KD-1 lost, stolen or broken"},
		{"key.code-accepted", "key:KD-1", "accept the activation code of key KD-1"},
		{"sync", "domain:corp", "sync domain corp"},
		{"employee.add", "employee:7", "add employee 7"},
		{"password.ad-written", `account:corp\anna`, `AD took the new password of account corp\anna`},
		{"removals.apply", "domain:corp", "apply the held removals of domain corp"},
		{"audit.read", "audit", "read the audit log"},
		{"master.rekey", "master-key", "rekey the master key"},
		{"something.new-here", "thing:1", "something new here thing 1"},
	}
	for _, tt := range actions {
		if got := auditActionWords(tt.action, tt.target); got != tt.want {
			t.Errorf("auditActionWords(%q, %q) = %q, want %q", tt.action, tt.target, got, tt.want)
		}
	}
	outcomes := map[string]string{store.OutcomeSuccess: "done", store.OutcomeFailure: "failed", store.OutcomeDenied: "denied", store.OutcomePartial: "partly done"}
	for o, want := range outcomes {
		if got := outcomeWord(o); got != want {
			t.Errorf("outcomeWord(%q) = %q, want %q", o, got, want)
		}
	}
	articles := map[string]string{"ready": "a ready key", "active": "an active key", "locked": "a locked key", app.StatusUnverifiedDevice: "an unverified device"}
	for s, want := range articles {
		if got := aKey(s); got != want {
			t.Errorf("aKey(%q) = %q, want %q", s, got, want)
		}
	}

	// Completeness: every identifier has words of its own.
	for _, s := range keylife.Statuses() {
		if _, ok := statusWords[s]; !ok {
			t.Errorf("status %q has no words", s)
		}
	}
	for _, a := range keylife.Actions() {
		w, ok := keyActionWords[a]
		if !ok {
			t.Errorf("key action %q has no words", a)
			continue
		}
		for _, r := range keylife.Reasons(a) {
			if _, ok := reasonWords[r]; !ok && r != keylife.ReasonNone {
				t.Errorf("reason %q (of %s) has no words", r, a)
			}
		}
		if got := auditActionWords("key."+string(a), "key:K"); strings.Contains(got, string(a)) && strings.ContainsAny(string(a), "-") {
			t.Errorf("the audit entry of %q reads %q: the identifier shows", a, got)
		}
		if strings.ContainsAny(w.done, "-.") {
			t.Errorf("%q: %q is not words", a, w.done)
		}
	}
	for _, p := range app.Permissions() {
		_, isKey := keyActionWords[keylife.Action(strings.TrimPrefix(string(p), "key."))]
		if _, ok := auditWords[string(p)]; !ok && !isKey {
			t.Errorf("permission %q (the action of a refused operation) has no words", p)
		}
	}
	for _, s := range []rotation.Step{rotation.StepPlanned, rotation.StepKeyPending, rotation.StepADSending, rotation.StepADWritten, rotation.StepDone, rotation.StepFailed} {
		if _, ok := auditWords["password."+string(s)]; !ok {
			t.Errorf("password step %q has no words", s)
		}
	}
}

// TestDurationWords: durations as people say them, both ways in time.
func TestDurationWords(t *testing.T) {
	now := fixedNow
	tests := []struct {
		d    time.Duration // from now; negative is the past
		want string
	}{
		{0, "just now"},
		{-30 * time.Second, "just now"},
		{30 * time.Second, "in under a minute"},
		{-time.Minute, "1 minute ago"},
		{-2 * time.Minute, "2 minutes ago"},
		{-100 * time.Second, "2 minutes ago"}, // rounded
		{45 * time.Minute, "in 45 minutes"},
		{-59*time.Minute - 40*time.Second, "1 hour ago"},
		{-time.Hour, "1 hour ago"},
		{5 * time.Hour, "in 5 hours"},
		{72*time.Hour - 90*time.Second, "in 72 hours"}, // a code issued a moment ago
		{72 * time.Hour, "in 72 hours"},
		{73 * time.Hour, "in 3 days"},
		{-10 * 24 * time.Hour, "10 days ago"},
		{59 * 24 * time.Hour, "in 59 days"},
		{-90 * 24 * time.Hour, "3 months ago"},
		{400 * 24 * time.Hour, "in 13 months"},
		{-800 * 24 * time.Hour, "2 years ago"},
	}
	for _, tt := range tests {
		if got := timeWords(now.Add(tt.d), now); got != tt.want {
			t.Errorf("timeWords(now%+v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := durationWords(-3 * time.Hour); got != "3 hours" {
		t.Errorf("durationWords(-3h) = %q, want 3 hours", got)
	}
}

// TestUserError: a refusal is the sentence a person needs, without the
// wrapping each layer adds.
func TestUserError(t *testing.T) {
	_, forbidden := keylife.Transition(keylife.StatusSuspended, keylife.ActionSuspend)
	_, final := keylife.Transition(keylife.StatusCompromised, keylife.ActionWithdraw)
	unknown := fmt.Errorf("%w %q: add it with keydesk keys add, or plug it in", app.ErrUnknownSerial, "KD-9")
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("key KD-1: %w", forbidden), "the key is suspended now: it cannot be suspended"},
		{fmt.Errorf("assign key KD-1: %w", fmt.Errorf("key KD-1: %w", final)), "the key is compromised now: nothing can be done with it"},
		{&app.PermissionError{Actor: app.Actor{Name: "hd", Role: app.RoleHelpdesk}, Permission: app.PermKeyCompromise}, "your role (helpdesk) cannot do this"},
		{fmt.Errorf("assign key KD-9: %w", unknown), `no key with this serial "KD-9": add it with keydesk keys add, or plug it in`},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", errors.New("the sentence"))), "the sentence"},
		{errors.New("first line\nsecond line"), "first line"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := userError(tt.err); got != tt.want {
			t.Errorf("userError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
