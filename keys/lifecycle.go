package keys

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Status is where a key is in its lifecycle. The store keeps it as this
// string.
type Status string

// The statuses. A key is "assigned" (it counts as its employee's one key)
// while it is Reserved, Active, Locked or Suspended; see Status.Assigned.
const (
	// StatusReady: in stock, wiped, no employee. A new key starts here.
	StatusReady Status = "ready"
	// StatusReserved: assigned to an employee, waiting for on-site
	// activation with the activation code.
	StatusReserved Status = "reserved"
	// StatusActive: activated; the key holds the employee's master secret.
	StatusActive Status = "active"
	// StatusLocked: out of service after three wrong activation codes or
	// after the key's own PIN was exhausted; only an operator's unlock brings it back.
	StatusLocked Status = "locked"
	// StatusSuspended: taken out of service by an operator.
	StatusSuspended Status = "suspended"
	// StatusDeactivated: withdrawn, or its employee left the sync group; it
	// still holds the old employee's data until it is plugged in and wiped.
	StatusDeactivated Status = "deactivated"
	// StatusCompromised: lost, stolen or broken. Final.
	StatusCompromised Status = "compromised"
)

// statuses lists every status in lifecycle order.
var statuses = [...]Status{StatusReady, StatusReserved, StatusActive, StatusLocked, StatusSuspended, StatusDeactivated, StatusCompromised}

// Statuses returns every status in lifecycle order.
func Statuses() []Status { return slices.Clone(statuses[:]) }

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool { return slices.Contains(statuses[:], s) }

// Assigned reports whether a key in this status counts as its employee's key.
// An employee has at most one such key (the store enforces it with a unique
// index over the same four statuses). A Deactivated or Compromised key keeps
// its employee link as history but no longer counts, so the employee can be
// given another key.
func (s Status) Assigned() bool {
	switch s {
	case StatusReserved, StatusActive, StatusLocked, StatusSuspended:
		return true
	}
	return false
}

// ParseStatus checks a status read from storage or typed by a person.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	if !st.Valid() {
		return "", fmt.Errorf("%w %q: want one of %s", ErrUnknownStatus, s, joinStatuses(statuses[:]))
	}
	return st, nil
}

// Action is something that happens to a key: an operator's decision, the
// outcome of an activation, a report from the device, or the sync.
type Action string

// The actions. Registering a key (plugged in for the first time, or added
// from a list of serials) is not an action: the key is created Ready.
const (
	// ActionAssign: an operator gives a Ready key to an employee.
	ActionAssign Action = "assign"
	// ActionActivate: the right activation code was entered on site.
	ActionActivate Action = "activate"
	// ActionRenewCode: an operator issues a new activation code for a Reserved
	// key (the old one expired or was lost); the new code replaces the old.
	ActionRenewCode Action = "renew-code"
	// ActionFailCodeLock: the MaxCodeAttempts-th wrong activation code.
	ActionFailCodeLock Action = "fail-code-lock"
	// ActionPINLock: the key reports that its own PIN is exhausted.
	ActionPINLock Action = "pin-lock"
	// ActionSuspend: an operator takes an Active key out of service.
	ActionSuspend Action = "suspend"
	// ActionUnlock: an operator brings a Locked or Suspended key back for its
	// employee. It does not reactivate: the key goes back to Reserved with a
	// new activation code (see Effects), and the employee activates it on
	// site again.
	ActionUnlock Action = "unlock"
	// ActionWithdraw: an operator takes the key away from its employee.
	ActionWithdraw Action = "withdraw"
	// ActionCompromise: the key is reported lost, stolen or broken.
	ActionCompromise Action = "compromise"
	// ActionDeactivate: the key's employee left: their account left the sync
	// group or was disabled or deleted (the sync), or a person added by hand
	// was removed.
	ActionDeactivate Action = "deactivate"
	// ActionWipe: a Deactivated key was plugged in and wiped; back in stock.
	ActionWipe Action = "wipe"
)

// actions lists every action in the order the console offers them.
var actions = [...]Action{ActionAssign, ActionActivate, ActionRenewCode, ActionFailCodeLock, ActionPINLock, ActionSuspend, ActionUnlock, ActionWithdraw, ActionCompromise, ActionDeactivate, ActionWipe}

// Actions returns every action.
func Actions() []Action { return slices.Clone(actions[:]) }

// Valid reports whether a is one of the actions.
func (a Action) Valid() bool { return slices.Contains(actions[:], a) }

// Reason says why a key is in its status: the reason of the transition that
// put it there, recorded on the key and in the audit entry. It is empty where
// the status needs no explanation (Ready, Reserved after assignment or a
// renewed code, Active).
type Reason string

// The reasons.
const (
	ReasonNone          Reason = ""
	ReasonInvalidCode   Reason = "invalid-activation-code" // fail-code-lock
	ReasonInvalidPIN    Reason = "invalid-pin"             // pin-lock: "locked by invalid PIN"
	ReasonSuspension    Reason = "suspension"              // suspend
	ReasonUnlock        Reason = "unlock"                  // unlock: Reserved again after a lock or suspension
	ReasonWithdrawal    Reason = "withdrawal"              // withdraw
	ReasonLost          Reason = "lost"                    // compromise
	ReasonStolen        Reason = "stolen"                  // compromise
	ReasonBroken        Reason = "broken"                  // compromise
	ReasonLeftSyncGroup Reason = "left-sync-group"         // deactivate, by the sync
	ReasonEmployeeGone  Reason = "employee-removed"        // deactivate, by hand
)

// reasons maps each action to the reasons it records. An action with one
// reason records it whatever the caller passes as ""; ActionCompromise needs
// the caller to say which.
var reasons = map[Action][]Reason{
	ActionAssign:       {ReasonNone},
	ActionActivate:     {ReasonNone},
	ActionRenewCode:    {ReasonNone},
	ActionFailCodeLock: {ReasonInvalidCode},
	ActionPINLock:      {ReasonInvalidPIN},
	ActionSuspend:      {ReasonSuspension},
	ActionUnlock:       {ReasonUnlock},
	ActionWithdraw:     {ReasonWithdrawal},
	ActionCompromise:   {ReasonLost, ReasonStolen, ReasonBroken},
	ActionDeactivate:   {ReasonLeftSyncGroup, ReasonEmployeeGone},
	ActionWipe:         {ReasonNone},
}

// Reasons returns the reasons action a may record.
func Reasons(a Action) []Reason { return slices.Clone(reasons[a]) }

// edge is one allowed transition.
type edge struct {
	action Action
	to     Status
}

// transitions is THE table of allowed transitions: from each status, the
// actions allowed and the status each leads to. Any (status, action) pair
// not listed is forbidden. Nothing else in KeyDesk decides a key's next
// status: every caller goes through Transition or Apply. Read-only after
// initialisation.
//
// Pairs not listed, and why:
//   - assign is only from Ready: a key in any other status either belongs to
//     someone (Reserved, Active, Locked, Suspended), may still hold someone's
//     data (Deactivated: wipe first) or must never be used again
//     (Compromised). Re-assigning means withdraw, wipe, assign.
//   - activate and renew-code are only from Reserved: only a Reserved key has
//     an activation code in play. A Locked key takes no code until an operator
//     unlocks it (which is what issues a new one).
//   - fail-code-lock is only from Reserved, for the same reason.
//   - pin-lock is only from Active: the key's PIN is the employee's only once
//     the key is activated. A Reserved key is (re)provisioned at activation
//     anyway; a Locked or Suspended key is already out of service and unlock
//     provisions it afresh, so the device's report is only audited there.
//   - suspend is only from Active: there is nothing to suspend in a key not
//     in use (withdraw a Reserved key instead), and Locked/Suspended are
//     already out of service.
//   - unlock is only from Locked or Suspended. Deactivated is not unlocked:
//     withdrawal or leaving the sync group ends the key's assignment; the
//     key is wiped and assigned again. There is deliberately no "resume"
//     (Suspended -> Active): a key that was out of service may have been out
//     of its employee's hands, so it comes back only through an on-site
//     activation with a new code.
//   - withdraw and deactivate are from the assigned statuses only: a Ready
//     key has no employee, a Deactivated key is already deactivated, a
//     Compromised key is final.
//   - wipe is only from Deactivated: a Ready key is already wiped, and an
//     assigned key plugged in must never be wiped silently (withdraw it
//     first, which is audited with its reason).
//   - nothing leaves Compromised: a key whose whereabouts were unknown, or
//     that failed, is never trusted again; its row stays as the record of
//     the loss.
var transitions = map[Status][]edge{
	StatusReady: {
		{ActionAssign, StatusReserved},        // the normal path: a key from stock goes to an employee, with a code
		{ActionCompromise, StatusCompromised}, // a stock key can be lost, stolen or broken too: it must leave the pool for good
	},
	StatusReserved: {
		{ActionActivate, StatusActive},        // the right code on site
		{ActionRenewCode, StatusReserved},     // a new code replaces the old (expired or lost); attempts start again
		{ActionFailCodeLock, StatusLocked},    // the last allowed wrong code
		{ActionWithdraw, StatusDeactivated},   // an operator cancels the assignment; wiped when plugged in
		{ActionCompromise, StatusCompromised}, // lost/stolen/broken before activation
		{ActionDeactivate, StatusDeactivated}, // the employee left before activating
	},
	StatusActive: {
		{ActionPINLock, StatusLocked},         // the device's PIN is exhausted
		{ActionSuspend, StatusSuspended},      // admin hold
		{ActionWithdraw, StatusDeactivated},   // the admin takes the key back
		{ActionCompromise, StatusCompromised}, // reported lost/stolen/broken
		{ActionDeactivate, StatusDeactivated}, // the employee left the sync group
	},
	StatusLocked: {
		{ActionUnlock, StatusReserved},        // back to its employee through a new activation
		{ActionWithdraw, StatusDeactivated},   // or taken back
		{ActionCompromise, StatusCompromised}, // a lock can be the first sign of a theft
		{ActionDeactivate, StatusDeactivated}, // the employee left the sync group
	},
	StatusSuspended: {
		{ActionUnlock, StatusReserved}, // the hold ends: new activation, new code
		{ActionWithdraw, StatusDeactivated},
		{ActionCompromise, StatusCompromised},
		{ActionDeactivate, StatusDeactivated},
	},
	StatusDeactivated: {
		{ActionWipe, StatusReady},             // plugged in again: wiped, employee link cleared, back in stock
		{ActionCompromise, StatusCompromised}, // lost before it came back: it may still hold the old data
	},
	StatusCompromised: {}, // final
}

// ErrForbidden is wrapped by every *TransitionError: the action is not
// allowed from the key's status.
var ErrForbidden = errors.New("transition not allowed")

// ErrUnknownStatus and ErrUnknownAction are returned for values outside
// the lists above (a corrupted row, a typo).
var (
	ErrUnknownStatus = errors.New("unknown key status")
	ErrUnknownAction = errors.New("unknown key action")
)

// ErrReason is wrapped when an action is given a reason it does not record.
var ErrReason = errors.New("invalid reason")

// TransitionError is a forbidden transition: it names the key's status, the
// action tried and what is allowed from that status.
type TransitionError struct {
	From    Status
	Action  Action
	Allowed []Action
}

func (e *TransitionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "key is %s: cannot %s", e.From, e.Action)
	if len(e.Allowed) == 0 {
		fmt.Fprintf(&b, "; %s is final, nothing is allowed from it", e.From)
		return b.String()
	}
	fmt.Fprintf(&b, "; allowed from %s: ", e.From)
	for i, a := range e.Allowed {
		if i > 0 {
			b.WriteString(", ")
		}
		to, _ := lookup(e.From, a)
		fmt.Fprintf(&b, "%s (to %s)", a, to)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (e *TransitionError) Unwrap() error { return ErrForbidden }

func lookup(from Status, a Action) (Status, bool) {
	for _, e := range transitions[from] {
		if e.action == a {
			return e.to, true
		}
	}
	return "", false
}

// Transition checks action a from status from and returns the status it
// leads to. A forbidden pair gives a *TransitionError (wrapping ErrForbidden)
// naming the status and what is allowed from it; an unknown status or action
// gives ErrUnknownStatus or ErrUnknownAction.
func Transition(from Status, a Action) (Status, error) {
	if !from.Valid() {
		return "", fmt.Errorf("%w %q", ErrUnknownStatus, from)
	}
	if !a.Valid() {
		return "", fmt.Errorf("%w %q: want one of %s", ErrUnknownAction, a, joinActions(actions[:]))
	}
	to, ok := lookup(from, a)
	if !ok {
		return "", &TransitionError{From: from, Action: a, Allowed: Allowed(from)}
	}
	return to, nil
}

// Allowed returns the actions allowed from status from, in table order
// (none for Compromised or an unknown status).
func Allowed(from Status) []Action {
	out := []Action{}
	for _, e := range transitions[from] {
		out = append(out, e.action)
	}
	return out
}

// Apply is Transition plus the reason: it returns the new status and the
// reason to record on the key and in the audit entry. r may be "" for an
// action that records a single reason; ActionCompromise needs one of lost,
// stolen or broken.
func Apply(from Status, a Action, r Reason) (Status, Reason, error) {
	to, err := Transition(from, a)
	if err != nil {
		return "", "", err
	}
	allowed := reasons[a]
	if r == ReasonNone && len(allowed) == 1 {
		return to, allowed[0], nil
	}
	if r != ReasonNone && slices.Contains(allowed, r) {
		return to, r, nil
	}
	names := make([]string, len(allowed))
	for i, x := range allowed {
		names[i] = string(x)
	}
	if r == ReasonNone {
		return "", "", fmt.Errorf("%w: %s needs one of %s", ErrReason, a, strings.Join(names, ", "))
	}
	return "", "", fmt.Errorf("%w: %s does not take reason %q; it takes %s", ErrReason, a, r, orNone(names))
}

func orNone(names []string) string {
	if len(names) == 1 && names[0] == "" {
		return "no reason"
	}
	return "one of " + strings.Join(names, ", ")
}

// Change says what an action does to one part of a key.
type Change int

// The changes.
const (
	Keep  Change = iota // left as it is
	Renew               // replaced by a new one
	Clear               // removed
	// Rotate (the secret only): a new one replaces it, and the one the
	// device still holds is kept as the previous secret until the device is
	// linked with the new one (the wipe before that link needs it).
	Rotate
)

func (c Change) String() string {
	switch c {
	case Keep:
		return "keep"
	case Renew:
		return "renew"
	case Clear:
		return "clear"
	case Rotate:
		return "rotate"
	}
	return fmt.Sprintf("Change(%d)", int(c))
}

// Effect is what an action does to a key besides its status and reason. The
// application layer carries it out in the same transaction as the status
// change.
type Effect struct {
	// Employee: Renew = link the key to the employee being assigned; Clear =
	// remove the link. Deactivated and Compromised keys keep the link as
	// history (they no longer count as the employee's key).
	Employee Change
	// Code: Renew = a new activation code (NewCode, HashCode) replaces any
	// old one, with a new expiry, and the attempt counter starts at 0;
	// Clear = hash and expiry removed, counter 0.
	Code Change
	// Secret: Renew = a new master secret (NewSecret) is sealed and stored,
	// replacing the old one; Rotate = the same, keeping the old one as the
	// previous secret (unless one is kept already: the device still holds
	// that one); Clear = the sealed secret, and any previous one, is
	// destroyed.
	Secret Change
	// PrevSecret: Clear = the previous secret kept by Rotate is destroyed
	// (the device was linked with the current one, or wiped).
	PrevSecret Change
	// WriteSecret: the master secret is sent to the key (activation).
	WriteSecret bool
	// WipeDevice: the physical key is wiped.
	WipeDevice bool
}

// effects is what each action does; see Effects.
var effects = map[Action]Effect{
	ActionAssign:       {Employee: Renew, Code: Renew, Secret: Renew},
	ActionActivate:     {Code: Clear, WriteSecret: true, PrevSecret: Clear},
	ActionRenewCode:    {Code: Renew},
	ActionFailCodeLock: {Code: Clear},
	ActionPINLock:      {},
	ActionSuspend:      {},
	// Unlock gives the key a new secret at its next activation: the old one
	// may have been copied while the key was out of its owner's hands. The
	// old one is kept until then: the activation needs it to wipe the key.
	ActionUnlock: {Code: Renew, Secret: Rotate},
	// A withdrawn or deactivated key keeps its sealed secret until it is
	// plugged in again: the wipe needs it to authenticate to the key.
	ActionWithdraw:   {Code: Clear},
	ActionCompromise: {Code: Clear, Secret: Clear, PrevSecret: Clear},
	ActionDeactivate: {Code: Clear},
	ActionWipe:       {Employee: Clear, Code: Clear, Secret: Clear, PrevSecret: Clear, WipeDevice: true},
}

// Effects returns what action a does to a key besides its status.
//
// Unlock, exactly: the key (Locked or Suspended) goes back to Reserved for
// the same employee with reason "unlock"; a new activation code replaces any
// old one (new expiry, attempt counter 0); a new master secret replaces the
// old one, which may have been copied while the key was out of its owner's
// hands. The old one is kept as the previous secret until the next on-site
// activation, which authenticates to the key with it, wipes the key and
// links it with the new one. Until then the key cannot be used.
//
// Withdraw and deactivate keep the sealed secret until the key is plugged
// in again and wiped (the wipe needs it to authenticate to the key); the
// wipe destroys it. Compromise destroys it at once: that key is never
// trusted again.
func Effects(a Action) Effect { return effects[a] }

func joinStatuses(ss []Status) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func joinActions(as []Action) string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
