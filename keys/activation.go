package keys

import (
	"fmt"
	"slices"
	"time"
)

// Activation turns a Reserved key into an Active one, on site, as a
// sequence of named steps. The application layer records the last step
// done in the database after each one; NextActivation says, from what is
// recorded and what the plugged-in key proves, what to do next: after a
// crash of KeyDesk or a key pulled out at any step, the activation resumes
// where it stopped, or starts again, and never records a key Active that
// does not hold its secret.

// Step is one step of an activation.
type Step string

// The steps, in order. The rotation issue adds one ("give the key its first
// domain password") before StepRecordActive.
const (
	// StepCheckCode: the code typed on site was checked and accepted (every
	// attempt is counted; a wrong one is not a step done).
	StepCheckCode Step = "check-code"
	// StepGiveSecret: the key holds the key's master secret: given by LINK,
	// or proved with AUTH when it already had it.
	StepGiveSecret Step = "give-secret"
	// StepRecordActive: the inventory records the key Active. The recorded
	// progress is removed in the same transaction.
	StepRecordActive Step = "record-active"
)

// activationSteps lists the steps in order.
var activationSteps = [...]Step{StepCheckCode, StepGiveSecret, StepRecordActive}

// ActivationSteps returns the steps in order.
func ActivationSteps() []Step { return slices.Clone(activationSteps[:]) }

// index is the step's position (-1 for none or an unknown step).
func (s Step) index() int { return slices.Index(activationSteps[:], s) }

// Later returns the later of two steps.
func (s Step) Later(o Step) Step {
	if o.index() > s.index() {
		return o
	}
	return s
}

// ResumeWindow is how long an accepted code lets an interrupted activation
// resume without the code being typed again, when the key plugged in again
// proves it already holds its secret. Giving a key its secret always takes
// a code checked in the same attempt.
const ResumeWindow = 15 * time.Minute

// Progress is what the database records of an activation under way.
type Progress struct {
	Done       Step      // the last step done
	At         time.Time // when the code was last accepted
	KeyVersion int64     // the key's version when the code was accepted
}

// DeviceState is what the plugged-in key proved about itself.
type DeviceState int

// The device states.
const (
	// DeviceNotPresent: the key is not plugged in (or not asked).
	DeviceNotPresent DeviceState = iota
	// DeviceBlank: it holds no secret.
	DeviceBlank
	// DeviceOurs: it proved (AUTH) that it holds this key's secret.
	DeviceOurs
	// DeviceOursLocked: its own PIN locked it, and it proved it holds this
	// key's secret.
	DeviceOursLocked
	// DeviceForeign: it holds a secret, and it is not this key's.
	DeviceForeign
	// DevicePrevious: it proved it holds the secret this key had before an
	// operator unlocked it (locked or not): it is wiped with that secret and
	// linked with the new one.
	DevicePrevious
)

func (d DeviceState) String() string {
	return [...]string{"not plugged in", "blank", "holds this key's secret", "locked by its PIN, holding this key's secret", "holds another secret", "holds this key's secret from before its unlock"}[d]
}

// ActivationFacts are what NextActivation decides from.
type ActivationFacts struct {
	Status     Status    // the key's status now
	KeyVersion int64     // the key's version now
	Progress   *Progress // nil: nothing recorded
	CodeTyped  bool      // a code was typed for this attempt and is not checked yet
	// CodeChecked: the code was checked and accepted in this attempt (not
	// only recorded by an earlier one): only then may the key be given its
	// secret.
	CodeChecked bool
	// OwnerGone says, when the key's employee is no longer active, who and
	// since when ("" while they are): such a key is never activated.
	OwnerGone string
	Device    DeviceState
	Now       time.Time
}

// Next is what to do next in an activation.
type Next string

// The decisions.
const (
	// NextStop: the key cannot be activated now (Why says why); any
	// recorded progress is discarded.
	NextStop Next = "stop"
	// NextDiscard: the recorded progress no longer applies (the key changed,
	// or the code was accepted too long ago): forget it and decide again.
	NextDiscard Next = "discard"
	// NextAskCode: nothing to resume without the person at the key: they
	// must type the code.
	NextAskCode Next = "ask-code"
	// NextCheckCode: check the typed code (StepCheckCode).
	NextCheckCode Next = "check-code"
	// NextWaitForKey: the next step needs the key plugged in.
	NextWaitForKey Next = "wait-for-key"
	// NextLink: give the blank key its secret (StepGiveSecret).
	NextLink Next = "link"
	// NextWipeAndLink: the key holds the secret from before an operator
	// unlocked it (or its PIN locked it): wipe it with the secret it holds,
	// then link it with the key's secret (StepGiveSecret).
	NextWipeAndLink Next = "wipe-and-link"
	// NextConfirmSecret: the key already holds its secret (a LINK whose
	// answer was lost, or a second attempt): record StepGiveSecret.
	NextConfirmSecret Next = "confirm-secret"
	// NextRecordActive: record the key Active (StepRecordActive).
	NextRecordActive Next = "record-active"
)

// NextActivation says what to do next, and why when it is a stop or a
// discard. It is pure: the application layer gathers the facts (the key's
// row, the recorded progress, and, when the next step needs it, what the
// plugged-in key proves) and carries out the decision.
func NextActivation(f ActivationFacts) (Next, string) {
	if f.Status != StatusReserved {
		if _, err := Transition(f.Status, ActionActivate); err != nil {
			return NextStop, err.Error()
		}
		return NextStop, fmt.Sprintf("the key is %s", f.Status)
	}
	if f.OwnerGone != "" {
		return NextStop, f.OwnerGone
	}
	if p := f.Progress; p != nil {
		switch {
		case p.KeyVersion != f.KeyVersion:
			return NextDiscard, "the key changed since its code was accepted (a new code, a wrong attempt, an admin's action)"
		case f.Now.Sub(p.At) > ResumeWindow:
			return NextDiscard, fmt.Sprintf("the code was accepted more than %s ago", ResumeWindow)
		case p.Done.index() < 0 || p.Done == StepRecordActive:
			return NextDiscard, fmt.Sprintf("the recorded step %q cannot be resumed", p.Done)
		}
	}
	switch {
	case f.CodeTyped:
		return NextCheckCode, ""
	case f.Progress == nil:
		return NextAskCode, ""
	case f.Progress.Done == StepGiveSecret:
		return NextRecordActive, ""
	}
	// The code is accepted; the key gets its secret. Only a code checked in
	// this attempt gives it: a device that merely claims the serial of a key
	// whose code someone typed earlier gets nothing.
	switch f.Device {
	case DeviceBlank, DeviceOursLocked, DevicePrevious:
		if !f.CodeChecked {
			return NextAskCode, ""
		}
		if f.Device == DeviceBlank {
			return NextLink, ""
		}
		return NextWipeAndLink, ""
	case DeviceOurs:
		return NextConfirmSecret, ""
	case DeviceForeign:
		return NextStop, "the key holds a secret KeyDesk did not give it: reset it with its maker's tool, or mark it broken and use another key"
	}
	return NextWaitForKey, ""
}
