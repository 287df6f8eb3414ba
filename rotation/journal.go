package rotation

import "fmt"

// A password change is a journal row that moves through steps, each one
// committed to the database before the next is attempted, so that a crash
// or a key pulled out at any moment leaves a row that says what may have
// happened. Next decides, from the row's step and what can be observed now
// (the key, if it is plugged in; which password Active Directory accepts,
// if that had to be asked), what to do next. It is pure and table-tested;
// the application layer carries the decisions out.
//
// The rule it keeps: the password that AD accepts is always on the key
// (current, or pending until COMMIT) or held sealed in the journal, so no
// one is ever locked out by KeyDesk, and a password is given to AD only
// while the key that must hold it is at hand (key first), unless the
// domain chose to rotate and hold (AD first).

// Step is how far a change got.
type Step string

// The steps.
const (
	// StepPlanned: the new password is chosen and sealed in the journal;
	// nothing else happened.
	StepPlanned Step = "planned"
	// StepKeyPending: the key holds the new password as its pending value
	// (WRITE); its current value is untouched.
	StepKeyPending Step = "key-pending"
	// StepADSending: the AD write was about to be sent: it may or may not
	// have reached the DC.
	StepADSending Step = "ad-sending"
	// StepADWritten: AD accepts the new password.
	StepADWritten Step = "ad-written"
	// StepDone: the key's current value is the new password (COMMIT), or,
	// for a change on the key only, the key holds it. Final.
	StepDone Step = "done"
	// StepFailed: the change was abandoned (AD refused it, or an operator
	// cancelled it); AD still accepts the old password. The key may still
	// hold the new one as pending until it is discarded. Final once
	// discarded.
	StepFailed Step = "failed"
)

// Order says which side gets the new password first.
type Order string

// The orders.
const (
	// KeyFirst: the key gets it as pending, then AD, then the key commits
	// it. The default: AD is only changed with the key at hand.
	KeyFirst Order = "key-first"
	// ADFirst: AD gets it while the key is away, and the journal holds it
	// sealed until the key connects (offline = "rotate-and-hold").
	ADFirst Order = "ad-first"
	// KeyOnly: only the key changes (the user typed the password AD already
	// has, and KeyDesk proved it with a bind).
	KeyOnly Order = "key-only"
)

// Slot is what the key's slot holds, compared with the change's new
// password (read through the key's session).
type Slot int

// What a slot value is.
const (
	SlotUnknown Slot = iota // not read (the key is not plugged in)
	SlotEmpty               // no value
	SlotNew                 // the change's new password
	SlotOther               // another value (the old password, or anything else)
)

// AD is what a probe learned about the account's password in AD: a bind as
// the user with the new password (one try: a failed bind counts toward
// the lockout threshold).
type AD int

// What AD accepts.
const (
	ADNotAsked    AD = iota // not probed
	ADAcceptsNew            // the bind with the new password worked
	ADRefusesNew            // the DC answered: wrong password (it still has another one)
	ADUnreachable           // the probe could not ask (DC down, network)
)

// Facts are what Next decides from.
type Facts struct {
	Step       Step
	Order      Order
	KeyPresent bool // the key is plugged in and proved who it is
	Pending    Slot // the slot's pending value (when KeyPresent)
	Current    Slot // the slot's current value (when KeyPresent)
	AD         AD
	// Discarded: for a failed change, the key's pending value was
	// discarded (or the key never got it).
	Discarded bool
}

// Action is what to do next.
type Action string

// The actions.
const (
	ActWriteKey   Action = "write-key"   // WRITE the new password as the slot's pending value; key first: then record StepKeyPending
	ActSendAD     Action = "send-ad"     // record StepADSending, then write AD; StepADWritten on success, StepFailed on a refusal
	ActProbeAD    Action = "probe-ad"    // bind as the user with the new password, once
	ActCommitKey  Action = "commit-key"  // COMMIT the slot; then StepDone
	ActDiscardKey Action = "discard-key" // DISCARD the slot's pending value; then the failed row is closed
	ActMarkStep   Action = "mark"        // record the step Mark says (what happened is already true)
	ActWaitKey    Action = "wait-key"    // nothing until the key is plugged in
	ActWaitAD     Action = "wait-ad"     // nothing until the DC answers again
	ActNone       Action = "none"        // final
)

// Decision is Next's answer: the action, the step to record for ActMarkStep,
// and why, for the journal and the log.
type Decision struct {
	Do   Action
	Mark Step
	Why  string
}

// Next decides what to do with a change in facts f.
func Next(f Facts) Decision {
	switch f.Step {
	case StepDone:
		return Decision{Do: ActNone}
	case StepFailed:
		if f.Discarded {
			return Decision{Do: ActNone}
		}
		if !f.KeyPresent {
			return Decision{Do: ActWaitKey, Why: "the key still holds the abandoned password as pending: it is dropped when the key is plugged in"}
		}
		if f.Pending == SlotNew {
			return Decision{Do: ActDiscardKey, Why: "drop the abandoned password from the key"}
		}
		return Decision{Do: ActMarkStep, Mark: StepFailed, Why: "the key no longer holds the abandoned password"}
	case StepADSending:
		// The write may or may not have reached the DC: ask it.
		switch f.AD {
		case ADNotAsked:
			return Decision{Do: ActProbeAD, Why: "the AD write was cut off: learn whether it happened"}
		case ADAcceptsNew:
			return Decision{Do: ActMarkStep, Mark: StepADWritten, Why: "AD accepts the new password: the write happened"}
		case ADRefusesNew:
			return Decision{Do: ActMarkStep, Mark: sentFrom(f.Order), Why: "AD still has the old password: the write did not happen"}
		}
		return Decision{Do: ActWaitAD, Why: "the DC cannot be asked whether the AD write happened"}
	}
	if f.Order == "" {
		f.Order = KeyFirst
	}
	switch f.Order {
	case KeyFirst, KeyOnly:
		return nextKeyFirst(f)
	case ADFirst:
		return nextADFirst(f)
	}
	return Decision{Do: ActNone, Why: fmt.Sprintf("unknown order %q", f.Order)}
}

// sentFrom is the step before StepADSending in order o.
func sentFrom(o Order) Step {
	if o == ADFirst {
		return StepPlanned
	}
	return StepKeyPending
}

func nextKeyFirst(f Facts) Decision {
	if !f.KeyPresent {
		return Decision{Do: ActWaitKey, Why: "the key must be plugged in: AD is changed only with the key at hand"}
	}
	switch f.Step {
	case StepPlanned:
		if f.Pending == SlotNew {
			return Decision{Do: ActMarkStep, Mark: StepKeyPending, Why: "the key already holds the new password as pending"}
		}
		return Decision{Do: ActWriteKey, Why: "give the key the new password as pending"}
	case StepKeyPending:
		if f.Pending != SlotNew {
			return Decision{Do: ActWriteKey, Why: "the key lost the pending password: give it again"}
		}
		if f.Order == KeyOnly {
			return Decision{Do: ActCommitKey, Why: "the key holds the password AD has: make it current"}
		}
		return Decision{Do: ActSendAD, Why: "the key holds the new password as pending: change it in AD"}
	case StepADWritten:
		return toTheKey(f, "AD has the new password: make it current on the key", "AD has the new password and the key lost it: give it again from the journal")
	}
	return Decision{Do: ActNone, Why: fmt.Sprintf("unknown step %q", f.Step)}
}

// toTheKey is what AD's new password needs from the key at hand: nothing
// (it is current), a COMMIT (it is pending), or a WRITE (the key lacks it).
func toTheKey(f Facts, commitWhy, writeWhy string) Decision {
	switch {
	case f.Current == SlotNew:
		return Decision{Do: ActMarkStep, Mark: StepDone, Why: "the key already holds the new password as current"}
	case f.Pending == SlotNew:
		return Decision{Do: ActCommitKey, Why: commitWhy}
	}
	return Decision{Do: ActWriteKey, Why: writeWhy}
}

func nextADFirst(f Facts) Decision {
	switch f.Step {
	case StepPlanned:
		return Decision{Do: ActSendAD, Why: "rotate and hold: change AD now, hold the password sealed for the key"}
	case StepADWritten:
		if !f.KeyPresent {
			return Decision{Do: ActWaitKey, Why: "AD has the new password; it is held sealed until the key is plugged in"}
		}
		return toTheKey(f, "make the held password current on the key", "give the key the held password")
	}
	return Decision{Do: ActNone, Why: fmt.Sprintf("unknown step %q", f.Step)}
}
