package ui

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"keydesk/app"
	keylife "keydesk/keys"
	"keydesk/store"
)

// The console's words for what the application layer names with
// identifiers: key statuses and reasons, key actions, audit actions and
// outcomes. Wherever the console shows one of these it shows its words,
// never the identifier (words_test.go checks that every status, reason and
// action has them).

// statusWords are the key statuses as the console says them.
var statusWords = map[keylife.Status]string{
	keylife.StatusReady:       "ready",
	keylife.StatusReserved:    "reserved",
	keylife.StatusActive:      "active",
	keylife.StatusLocked:      "locked",
	keylife.StatusSuspended:   "suspended",
	keylife.StatusDeactivated: "deactivated",
	keylife.StatusCompromised: "compromised",
}

// reasonWords say why a key is in its status, after the status ("locked,
// too many wrong codes"). A reason the status already says (suspension)
// has none.
var reasonWords = map[keylife.Reason]string{
	keylife.ReasonInvalidCode:   "too many wrong codes",
	keylife.ReasonInvalidPIN:    "its PIN is blocked",
	keylife.ReasonSuspension:    "",
	keylife.ReasonUnlock:        "new code issued",
	keylife.ReasonWithdrawal:    "withdrawn",
	keylife.ReasonLost:          "lost",
	keylife.ReasonStolen:        "stolen",
	keylife.ReasonBroken:        "broken",
	keylife.ReasonLeftSyncGroup: "its employee left the sync group",
	keylife.ReasonEmployeeGone:  "its employee was removed",
}

// keyActionWords are the key lifecycle's actions: what an audit entry of
// the action did to its key ("%s" is the key), and what the action makes
// of a key ("it cannot be suspended").
var keyActionWords = map[keylife.Action]struct{ did, done string }{
	keylife.ActionAssign:       {"assign %s", "assigned"},
	keylife.ActionActivate:     {"activate %s", "activated"},
	keylife.ActionRenewCode:    {"issue a new activation code for %s", "given a new code"},
	keylife.ActionFailCodeLock: {"lock %s after too many wrong codes", "locked"},
	keylife.ActionPINLock:      {"lock %s: its PIN is blocked", "locked"},
	keylife.ActionSuspend:      {"suspend %s", "suspended"},
	keylife.ActionUnlock:       {"unlock %s", "unlocked"},
	keylife.ActionWithdraw:     {"withdraw %s", "withdrawn"},
	keylife.ActionCompromise:   {"mark %s lost, stolen or broken", "marked lost, stolen or broken"},
	keylife.ActionDeactivate:   {"deactivate %s", "deactivated"},
	keylife.ActionWipe:         {"wipe %s", "wiped"},
}

// auditWords are the audit log's other actions ("%s" is the target). A
// refused operation is recorded under its permission's name, so those are
// here too.
var auditWords = map[string]string{
	"sync":                     "sync %s",
	"employee.add":             "add %s",
	"employee.remove":          "remove %s",
	"employee.restore":         "restore %s",
	"key.add":                  "add %s",
	"key.register":             "register %s (first plugged in)",
	"key.attestation-pinned":   "pin the attestation key of %s",
	"key.unverified-device":    "refuse a device claiming to be %s",
	"key.simulate":             "make %s (simulated)",
	"key.code-accepted":        "accept the activation code of %s",
	"key.secret-given":         "give %s its secret",
	"key.activation-discarded": "discard the activation under way of %s",
	"key.inspect":              "inspect %s",
	"kiosk.refused":            "refuse %s at a kiosk",
	"invitation.send":          "invite %s",
	"invitation.mail":          "mail the invitation of %s",
	"enrollment.begin":         "begin the enrollment of %s",
	"enrollment.confirm":       "enroll the authenticator of %s",
	"enrollment.verify":        "check the authenticator code of %s",
	"enrollment.reset":         "forget the authenticator of %s",
	"enrollment.enroll":        "enroll an authenticator for %s",
	"password.planned":         "plan a password change of %s",
	"password.key-pending":     "put the new password of %s on its key",
	"password.ad-sending":      "send the new password of %s to AD",
	"password.ad-written":      "AD took the new password of %s",
	"password.done":            "change the password of %s",
	"password.failed":          "fail to change the password of %s",
	"password.moved":           "move the password change of %s",
	"password.reveal":          "reveal the password of %s",
	"password.self":            "own password change of %s",
	"password.rotate":          "rotate the password of %s",
	"password.set":             "set the password of %s",
	"master.rekey":             "rekey %s",
	"audit.genesis":            "start %s",
	"audit.keyed":              "start keying %s",
	"audit.read":               "read %s",
	"audit.export":             "export %s",
	"removals.apply":           "apply the held removals of %s",
	"read":                     "read %s",
	"operator.manage":          "manage %s",
}

// targetKinds are the audit targets' kinds: "key:KD-0001" is key
// KD-0001.
var targetKinds = map[string]string{
	"key":        "key",
	"keys":       "keys",
	"employee":   "employee",
	"domain":     "domain",
	"account":    "account",
	"invitation": "invitation",
	"outbox":     "message",
}

// wholeTargets are the audit targets that name no one item: "audit" is
// the audit log.
var wholeTargets = map[string]string{
	"audit":       "the audit log",
	"keys":        "the keys",
	"outbox":      "the outbox",
	"master-key":  "the master key",
	"doctor":      "the health check",
	"domains":     "the domains",
	"employees":   "the employees",
	"enrollment":  "an enrollment",
	"invitations": "the invitations",
	"operators":   "the operators",
	"rotations":   "the password rotations",
}

// outcomeWords are the audit outcomes.
var outcomeWords = map[string]string{
	store.OutcomeSuccess: "done",
	store.OutcomeFailure: "failed",
	store.OutcomePartial: "partly done",
	store.OutcomeDenied:  "denied",
}

// keyStatusWords is a key's status and why, as words: "locked, too many
// wrong codes", "reserved, new code issued", "suspended".
func keyStatusWords(status, reason string) string {
	if status == app.StatusUnverifiedDevice {
		return "unverified device"
	}
	s, ok := statusWords[keylife.Status(status)]
	if !ok {
		s = plainWords(status)
	}
	r, ok := reasonWords[keylife.Reason(reason)]
	if !ok {
		r = plainWords(reason)
	}
	if r == "" {
		return s
	}
	return s + ", " + r
}

// aKey is "a ready key", "an active key", "an unverified device": what a
// refusal says an action is not for.
func aKey(status string) string {
	w := keyStatusWords(status, "")
	if status != app.StatusUnverifiedDevice {
		w += " key"
	}
	if strings.ContainsRune("aeiou", rune(w[0])) {
		return "an " + w
	}
	return "a " + w
}

// targetWords is an audit target as words: "key:KD-0001" is "key KD-0001".
func targetWords(target string) string {
	kind, id, ok := strings.Cut(target, ":")
	if !ok {
		if w, ok := wholeTargets[target]; ok {
			return w
		}
		return plainWords(target)
	}
	if w, ok := targetKinds[kind]; ok {
		kind = w
	}
	return kind + " " + id
}

// targetID is what an audit target names, without its kind: the serial of
// "key:KD-0001".
func targetID(target string) string {
	if _, id, ok := strings.Cut(target, ":"); ok {
		return id
	}
	return target
}

// auditActionWords says what an audit entry records, with its target:
// "suspend key KD-0002", "sync domain corp".
func auditActionWords(action, target string) string {
	t := targetWords(target)
	if a, ok := strings.CutPrefix(action, "key."); ok {
		if w, ok := keyActionWords[keylife.Action(a)]; ok {
			return fmt.Sprintf(w.did, t)
		}
	}
	if w := auditWords[action]; w != "" {
		return fmt.Sprintf(w, t)
	}
	return strings.TrimSpace(plainWords(action) + " " + t)
}

// outcomeWord is an audit outcome as a word.
func outcomeWord(o string) string {
	if w, ok := outcomeWords[o]; ok {
		return w
	}
	return plainWords(o)
}

// plainWords turns an identifier nobody gave words yet into words
// ("fail-code-lock" reads "fail code lock"), so that none reaches the
// screen as it is.
func plainWords(id string) string {
	return strings.NewReplacer("-", " ", "_", " ", ".", " ").Replace(id)
}

// count is n things in English: "1 wrong attempt", "0 wrong attempts".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// durationWords says how long d is as people say it: "2 minutes", "72
// hours", "3 days", "5 months". Up to 72 hours it counts hours (a code
// that expires in 72 hours says so), then days, then months and years. It
// rounds to the nearest unit; under a minute it is "" (the callers say
// "just now").
func durationWords(d time.Duration) string {
	d = d.Abs()
	unit := count
	if d < time.Minute {
		return ""
	}
	if m := int(math.Round(d.Minutes())); m < 60 {
		return unit(m, "minute")
	}
	if h := int(math.Round(d.Hours())); h <= 72 {
		return unit(h, "hour")
	}
	days := int(math.Round(d.Hours() / 24))
	switch {
	case days < 60:
		return unit(days, "day")
	case days < 730:
		return unit(int(math.Round(float64(days)/30.44)), "month")
	}
	return unit(int(math.Round(float64(days)/365.25)), "year")
}

// timeWords says when t is, seen from now, as people say it: "2 minutes
// ago", "in 72 hours", "just now", "in under a minute".
func timeWords(t, now time.Time) string {
	d := t.Sub(now)
	w := durationWords(d)
	switch {
	case w == "" && d > 0:
		return "in under a minute"
	case w == "":
		return "just now"
	case d > 0:
		return "in " + w
	}
	return w + " ago"
}

// userError is the sentence of an error a person needs, in one line: the
// wrapping each layer adds ("assign key KD-1: key KD-1: ...") is taken
// off down to the innermost error that says more than its cause; a
// forbidden lifecycle step and a refused permission are said in words.
// The full error stays with the caller (and in the audit log).
func userError(err error) string {
	if err == nil {
		return ""
	}
	var te *keylife.TransitionError
	if errors.As(err, &te) {
		if len(te.Allowed) == 0 {
			return fmt.Sprintf("the key is %s now: nothing can be done with it", keyStatusWords(string(te.From), ""))
		}
		done := string(te.Action)
		if w, ok := keyActionWords[te.Action]; ok {
			done = w.done
		}
		return fmt.Sprintf("the key is %s now: it cannot be %s", keyStatusWords(string(te.From), ""), done)
	}
	var pe *app.PermissionError
	if errors.As(err, &pe) {
		return fmt.Sprintf("your role (%s) cannot do this", pe.Actor.Role)
	}
	msg := err.Error()
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			break
		}
		im := inner.Error()
		// A layer that only puts words in front of its cause is wrapping;
		// one that says more than its cause ("...: plug it in first")
		// is the sentence.
		if !strings.HasSuffix(msg, ": "+im) {
			break
		}
		err, msg = inner, im
	}
	return firstLine(msg)
}
