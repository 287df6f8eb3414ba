package keys

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// want is the transition table written out again, independently of the
// package's own: every pair not listed must be forbidden.
var want = map[Status]map[Action]Status{
	StatusReady: {
		ActionAssign:     StatusReserved,
		ActionCompromise: StatusCompromised,
	},
	StatusReserved: {
		ActionActivate:     StatusActive,
		ActionRenewCode:    StatusReserved,
		ActionFailCodeLock: StatusLocked,
		ActionWithdraw:     StatusDeactivated,
		ActionCompromise:   StatusCompromised,
		ActionDeactivate:   StatusDeactivated,
	},
	StatusActive: {
		ActionPINLock:    StatusLocked,
		ActionSuspend:    StatusSuspended,
		ActionWithdraw:   StatusDeactivated,
		ActionCompromise: StatusCompromised,
		ActionDeactivate: StatusDeactivated,
	},
	StatusLocked: {
		ActionUnlock:     StatusReserved,
		ActionWithdraw:   StatusDeactivated,
		ActionCompromise: StatusCompromised,
		ActionDeactivate: StatusDeactivated,
	},
	StatusSuspended: {
		ActionUnlock:     StatusReserved,
		ActionWithdraw:   StatusDeactivated,
		ActionCompromise: StatusCompromised,
		ActionDeactivate: StatusDeactivated,
	},
	StatusDeactivated: {
		ActionWipe:       StatusReady,
		ActionCompromise: StatusCompromised,
	},
	StatusCompromised: {},
}

func TestStatusesAndActionsAreComplete(t *testing.T) {
	wantStatuses := []Status{"ready", "reserved", "active", "locked", "suspended", "deactivated", "compromised"}
	if got := Statuses(); !slices.Equal(got, wantStatuses) {
		t.Errorf("Statuses() = %v, want %v", got, wantStatuses)
	}
	if len(want) != len(wantStatuses) {
		t.Fatalf("the test's table has %d statuses, want %d", len(want), len(wantStatuses))
	}
	wantActions := []Action{"assign", "activate", "renew-code", "fail-code-lock", "pin-lock", "suspend", "unlock", "withdraw", "compromise", "deactivate", "wipe"}
	if got := Actions(); !slices.Equal(got, wantActions) {
		t.Errorf("Actions() = %v, want %v", got, wantActions)
	}
	// The lists handed out are copies.
	Statuses()[0] = "x"
	Actions()[0] = "x"
	if Statuses()[0] != StatusReady || Actions()[0] != ActionAssign {
		t.Error("changing a returned list changed the package's list")
	}
	for _, s := range wantStatuses {
		if _, ok := transitions[s]; !ok {
			t.Errorf("status %s missing from the transition table", s)
		}
	}
	for _, a := range wantActions {
		if _, ok := reasons[a]; !ok {
			t.Errorf("action %s has no reasons", a)
		}
		if _, ok := effects[a]; !ok {
			t.Errorf("action %s has no effects", a)
		}
	}
}

// TestTransitionEveryPair checks all 77 (status, action) pairs.
func TestTransitionEveryPair(t *testing.T) {
	allowedPairs := 0
	for _, from := range Statuses() {
		var wantAllowed []Action
		for _, a := range Actions() {
			if _, ok := want[from][a]; ok {
				wantAllowed = append(wantAllowed, a)
			}
		}
		got := Allowed(from)
		slices.Sort(got)
		sorted := slices.Clone(wantAllowed)
		slices.Sort(sorted)
		if !slices.Equal(got, sorted) {
			t.Errorf("Allowed(%s) = %v, want %v", from, got, sorted)
		}
		for _, a := range Actions() {
			t.Run(string(from)+"/"+string(a), func(t *testing.T) {
				to, err := Transition(from, a)
				if wantTo, ok := want[from][a]; ok {
					allowedPairs++
					if err != nil || to != wantTo {
						t.Fatalf("Transition(%s, %s) = %q, %v; want %s", from, a, to, err, wantTo)
					}
					return
				}
				if err == nil {
					t.Fatalf("Transition(%s, %s) = %s, want it forbidden", from, a, to)
				}
				if !errors.Is(err, ErrForbidden) {
					t.Errorf("error %v is not ErrForbidden", err)
				}
				var te *TransitionError
				if !errors.As(err, &te) {
					t.Fatalf("error %T is not a *TransitionError", err)
				}
				if te.From != from || te.Action != a {
					t.Errorf("TransitionError{From: %s, Action: %s}, want %s, %s", te.From, te.Action, from, a)
				}
				if a, w := slices.Sorted(slices.Values(te.Allowed)), slices.Sorted(slices.Values(wantAllowed)); !slices.Equal(a, w) {
					t.Errorf("TransitionError.Allowed = %v, want %v", te.Allowed, wantAllowed)
				}
				msg := err.Error()
				mustContain := []string{"key is " + string(from), "cannot " + string(a)}
				for _, x := range wantAllowed {
					mustContain = append(mustContain, string(x)+" (to "+string(want[from][x])+")")
				}
				if len(wantAllowed) == 0 {
					mustContain = append(mustContain, "final")
				}
				for _, w := range mustContain {
					if !strings.Contains(msg, w) {
						t.Errorf("message %q does not contain %q", msg, w)
					}
				}
			})
		}
	}
	if allowedPairs != 23 {
		t.Errorf("%d allowed pairs checked, want 23", allowedPairs)
	}
}

func TestTransitionUnknown(t *testing.T) {
	tests := []struct {
		from    Status
		action  Action
		wantErr error
	}{
		{"", ActionAssign, ErrUnknownStatus},
		{"Ready", ActionAssign, ErrUnknownStatus},
		{"lost", ActionWipe, ErrUnknownStatus},
		{StatusReady, "", ErrUnknownAction},
		{StatusReady, "Assign", ErrUnknownAction},
		{StatusActive, "resume", ErrUnknownAction},
	}
	for _, tt := range tests {
		_, err := Transition(tt.from, tt.action)
		if !errors.Is(err, tt.wantErr) || errors.Is(err, ErrForbidden) {
			t.Errorf("Transition(%q, %q) error = %v, want %v", tt.from, tt.action, err, tt.wantErr)
		}
	}
	if got := Allowed("nonsense"); len(got) != 0 {
		t.Errorf("Allowed(unknown) = %v, want none", got)
	}
}

func TestAllowedIsACopy(t *testing.T) {
	a := Allowed(StatusActive)
	a[0] = ActionWipe
	if Allowed(StatusActive)[0] == ActionWipe {
		t.Fatal("changing Allowed's result changed the table")
	}
}

// TestLifecycle walks the product's flows through the table.
func TestLifecycle(t *testing.T) {
	flows := map[string][]Action{
		"assign and activate":    {ActionAssign, ActionActivate},
		"code renewed":           {ActionAssign, ActionRenewCode, ActionRenewCode, ActionActivate},
		"three wrong codes":      {ActionAssign, ActionFailCodeLock, ActionUnlock, ActionActivate},
		"PIN exhausted":          {ActionAssign, ActionActivate, ActionPINLock, ActionUnlock, ActionActivate},
		"suspend and unlock":     {ActionAssign, ActionActivate, ActionSuspend, ActionUnlock, ActionActivate},
		"withdraw and reuse":     {ActionAssign, ActionActivate, ActionWithdraw, ActionWipe, ActionAssign},
		"left the group":         {ActionAssign, ActionActivate, ActionDeactivate, ActionWipe},
		"lost while locked":      {ActionAssign, ActionActivate, ActionPINLock, ActionCompromise},
		"lost after withdrawal":  {ActionAssign, ActionWithdraw, ActionCompromise},
		"broken in stock":        {ActionCompromise},
		"left before activation": {ActionAssign, ActionDeactivate, ActionWipe},
	}
	for name, flow := range flows {
		s := StatusReady
		for i, a := range flow {
			to, err := Transition(s, a)
			if err != nil {
				t.Errorf("%s: step %d (%s from %s): %v", name, i+1, a, s, err)
				break
			}
			s = to
		}
	}
}

func TestCompromisedIsFinalAndReachable(t *testing.T) {
	if got := Allowed(StatusCompromised); len(got) != 0 {
		t.Errorf("Allowed(compromised) = %v, want nothing", got)
	}
	for _, s := range Statuses() {
		if s == StatusCompromised {
			continue
		}
		if to, err := Transition(s, ActionCompromise); err != nil || to != StatusCompromised {
			t.Errorf("compromise from %s = %s, %v; want compromised", s, to, err)
		}
	}
}

func TestAssigned(t *testing.T) {
	tests := map[Status]bool{
		StatusReady: false, StatusReserved: true, StatusActive: true, StatusLocked: true,
		StatusSuspended: true, StatusDeactivated: false, StatusCompromised: false, "bogus": false,
	}
	for s, w := range tests {
		if got := s.Assigned(); got != w {
			t.Errorf("%s.Assigned() = %v, want %v", s, got, w)
		}
	}
	// Every transition into an assigned status from outside is an
	// assignment, so that the one-key-per-employee rule is checked there.
	for _, from := range Statuses() {
		for _, a := range Allowed(from) {
			to, _ := Transition(from, a)
			if to.Assigned() && !from.Assigned() && a != ActionAssign {
				t.Errorf("%s: %s -> %s makes a key assigned without assigning it", a, from, to)
			}
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, s := range Statuses() {
		if got, err := ParseStatus(string(s)); err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "Active", " active", "enabled"} {
		_, err := ParseStatus(bad)
		if !errors.Is(err, ErrUnknownStatus) || !strings.Contains(err.Error(), "ready, reserved, active") {
			t.Errorf("ParseStatus(%q) error = %v, want ErrUnknownStatus listing the statuses", bad, err)
		}
	}
}

func TestApplyReasons(t *testing.T) {
	tests := []struct {
		from       Status
		action     Action
		reason     Reason
		wantStatus Status
		wantReason Reason
		wantErr    error
	}{
		{StatusReady, ActionAssign, "", StatusReserved, ReasonNone, nil},
		{StatusReady, ActionAssign, ReasonLost, "", "", ErrReason},
		{StatusReserved, ActionActivate, "", StatusActive, ReasonNone, nil},
		{StatusReserved, ActionRenewCode, "", StatusReserved, ReasonNone, nil},
		{StatusReserved, ActionFailCodeLock, "", StatusLocked, ReasonInvalidCode, nil},
		{StatusReserved, ActionFailCodeLock, ReasonInvalidCode, StatusLocked, ReasonInvalidCode, nil},
		{StatusReserved, ActionFailCodeLock, ReasonInvalidPIN, "", "", ErrReason},
		{StatusActive, ActionPINLock, "", StatusLocked, ReasonInvalidPIN, nil},
		{StatusActive, ActionSuspend, "", StatusSuspended, ReasonSuspension, nil},
		{StatusLocked, ActionUnlock, "", StatusReserved, ReasonUnlock, nil},
		{StatusSuspended, ActionUnlock, "", StatusReserved, ReasonUnlock, nil},
		{StatusActive, ActionWithdraw, "", StatusDeactivated, ReasonWithdrawal, nil},
		{StatusActive, ActionWithdraw, ReasonStolen, "", "", ErrReason},
		{StatusActive, ActionCompromise, ReasonLost, StatusCompromised, ReasonLost, nil},
		{StatusActive, ActionCompromise, ReasonStolen, StatusCompromised, ReasonStolen, nil},
		{StatusActive, ActionCompromise, ReasonBroken, StatusCompromised, ReasonBroken, nil},
		{StatusActive, ActionCompromise, "", "", "", ErrReason},
		{StatusActive, ActionCompromise, ReasonWithdrawal, "", "", ErrReason},
		{StatusActive, ActionDeactivate, ReasonLeftSyncGroup, StatusDeactivated, ReasonLeftSyncGroup, nil},
		{StatusReserved, ActionDeactivate, ReasonEmployeeGone, StatusDeactivated, ReasonEmployeeGone, nil},
		{StatusActive, ActionDeactivate, "", "", "", ErrReason},
		{StatusDeactivated, ActionWipe, "", StatusReady, ReasonNone, nil},
		{StatusCompromised, ActionWipe, "", "", "", ErrForbidden},
		{StatusReady, ActionCompromise, "", "", "", ErrReason},
	}
	for _, tt := range tests {
		to, r, err := Apply(tt.from, tt.action, tt.reason)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Apply(%s, %s, %q) error = %v, want %v", tt.from, tt.action, tt.reason, err, tt.wantErr)
			}
			if errors.Is(err, ErrReason) && !strings.Contains(err.Error(), string(tt.action)) {
				t.Errorf("reason error %q does not name the action", err)
			}
			continue
		}
		if err != nil || to != tt.wantStatus || r != tt.wantReason {
			t.Errorf("Apply(%s, %s, %q) = %s, %q, %v; want %s, %q", tt.from, tt.action, tt.reason, to, r, err, tt.wantStatus, tt.wantReason)
		}
	}
	_, _, err := Apply(StatusActive, ActionCompromise, "")
	if err == nil || !strings.Contains(err.Error(), "lost, stolen, broken") {
		t.Errorf("compromise without a reason: %v, want the reasons listed", err)
	}
}

func TestEffects(t *testing.T) {
	tests := []struct {
		action Action
		want   Effect
	}{
		{ActionAssign, Effect{Employee: Renew, Code: Renew, Secret: Renew}},
		{ActionActivate, Effect{Code: Clear, WriteSecret: true, PrevSecret: Clear}},
		{ActionRenewCode, Effect{Code: Renew}},
		{ActionFailCodeLock, Effect{Code: Clear}},
		{ActionPINLock, Effect{}},
		{ActionSuspend, Effect{}},
		{ActionUnlock, Effect{Code: Renew, Secret: Rotate}},
		{ActionWithdraw, Effect{Code: Clear}}, // the secret stays for the wipe
		{ActionCompromise, Effect{Code: Clear, Secret: Clear, PrevSecret: Clear}},
		{ActionDeactivate, Effect{Code: Clear}},
		{ActionWipe, Effect{Employee: Clear, Code: Clear, Secret: Clear, PrevSecret: Clear, WipeDevice: true}},
	}
	if len(tests) != len(Actions()) {
		t.Fatalf("%d actions tested, want all %d", len(tests), len(Actions()))
	}
	for _, tt := range tests {
		if got := Effects(tt.action); got != tt.want {
			t.Errorf("Effects(%s) = %+v, want %+v", tt.action, got, tt.want)
		}
	}
	// Consistency with the table: only statuses with a code in play get a
	// code, and a key entering Ready keeps nothing of its past.
	for _, from := range Statuses() {
		for _, a := range Allowed(from) {
			to, _ := Transition(from, a)
			e := Effects(a)
			if (e.Code == Renew) != (to == StatusReserved) {
				t.Errorf("%s (%s -> %s): code %s", a, from, to, e.Code)
			}
			if to == StatusReady && (e.Employee != Clear || e.Code != Clear || e.Secret != Clear || !e.WipeDevice) {
				t.Errorf("%s into ready leaves something behind: %+v", a, e)
			}
			if to == StatusCompromised && e.Secret != Clear {
				t.Errorf("%s into compromised keeps the secret", a)
			}
		}
	}
}
