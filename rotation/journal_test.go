package rotation

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestNext(t *testing.T) {
	present := func(f Facts) Facts { f.KeyPresent = true; return f }
	tests := []struct {
		name string
		f    Facts
		want Action
		mark Step
	}{
		// Key first.
		{"planned, key away", Facts{Step: StepPlanned}, ActWaitKey, ""},
		{"planned, key here", present(Facts{Step: StepPlanned, Pending: SlotEmpty, Current: SlotOther}), ActWriteKey, ""},
		{"planned, WRITE done but not recorded", present(Facts{Step: StepPlanned, Pending: SlotNew, Current: SlotOther}), ActMarkStep, StepKeyPending},
		{"pending on the key, key away: AD waits", Facts{Step: StepKeyPending}, ActWaitKey, ""},
		{"pending on the key, key here", present(Facts{Step: StepKeyPending, Pending: SlotNew, Current: SlotOther}), ActSendAD, ""},
		{"pending lost (key wiped meanwhile)", present(Facts{Step: StepKeyPending, Pending: SlotEmpty, Current: SlotEmpty}), ActWriteKey, ""},
		{"AD write cut off: ask", Facts{Step: StepADSending}, ActProbeAD, ""},
		{"AD write cut off: it happened", Facts{Step: StepADSending, AD: ADAcceptsNew}, ActMarkStep, StepADWritten},
		{"AD write cut off: it did not", Facts{Step: StepADSending, AD: ADRefusesNew}, ActMarkStep, StepKeyPending},
		{"AD write cut off: DC down", Facts{Step: StepADSending, AD: ADUnreachable}, ActWaitAD, ""},
		{"AD written, key away: held on the key's pending and the journal", Facts{Step: StepADWritten}, ActWaitKey, ""},
		{"AD written, key here", present(Facts{Step: StepADWritten, Pending: SlotNew, Current: SlotOther}), ActCommitKey, ""},
		{"AD written, COMMIT done but not recorded", present(Facts{Step: StepADWritten, Pending: SlotEmpty, Current: SlotNew}), ActMarkStep, StepDone},
		{"AD written, the key lost it", present(Facts{Step: StepADWritten, Pending: SlotOther, Current: SlotOther}), ActWriteKey, ""},
		{"done", Facts{Step: StepDone}, ActNone, ""},
		// Failed.
		{"failed, key away", Facts{Step: StepFailed}, ActWaitKey, ""},
		{"failed, key holds it as pending", present(Facts{Step: StepFailed, Pending: SlotNew}), ActDiscardKey, ""},
		{"failed, key does not hold it", present(Facts{Step: StepFailed, Pending: SlotEmpty}), ActMarkStep, StepFailed},
		{"failed and discarded", Facts{Step: StepFailed, Discarded: true}, ActNone, ""},
		// AD first (rotate and hold).
		{"hold: planned, key away", Facts{Step: StepPlanned, Order: ADFirst}, ActSendAD, ""},
		{"hold: AD write cut off, did not happen", Facts{Step: StepADSending, Order: ADFirst, AD: ADRefusesNew}, ActMarkStep, StepPlanned},
		{"hold: held until the key comes", Facts{Step: StepADWritten, Order: ADFirst}, ActWaitKey, ""},
		{"hold: the key came", present(Facts{Step: StepADWritten, Order: ADFirst, Pending: SlotEmpty, Current: SlotOther}), ActWriteKey, ""},
		{"hold: the key has it pending", present(Facts{Step: StepADWritten, Order: ADFirst, Pending: SlotNew, Current: SlotOther}), ActCommitKey, ""},
		// Key only.
		{"key only: pending, commit", present(Facts{Step: StepKeyPending, Order: KeyOnly, Pending: SlotNew, Current: SlotOther}), ActCommitKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Next(tt.f)
			if d.Do != tt.want || d.Mark != tt.mark {
				t.Errorf("Next = %+v, want %s %s", d, tt.want, tt.mark)
			}
			if d.Do != ActNone && d.Why == "" {
				t.Error("a decision without a reason")
			}
		})
	}
}

// world is a simulated key, AD and journal row, on which the walk carries
// out Next's decisions with crashes and unplugs injected anywhere.
type world struct {
	step             Step
	order            Order
	adNew            bool // AD accepts the new password (else the old one)
	present          bool
	pending, current Slot // as the key holds them
	discarded        bool
	ad               AD // what the last probe learned (forgotten on a crash)
	trail            []string
}

// check is the rule: the password AD accepts is on the key, current or
// pending, or held in the journal (any row not yet done holds the new one).
func (w *world) check() error {
	if w.adNew {
		if w.current != SlotNew && w.pending != SlotNew && w.step == StepDone {
			return fmt.Errorf("AD has the new password, the key does not, and the journal is done")
		}
		return nil
	}
	if w.current != SlotOther && w.order != KeyOnly {
		return fmt.Errorf("AD has the old password but the key's current value is %v", w.current)
	}
	return nil
}

// act carries out d; crash cuts it at a random point (the effect may
// happen without its record).
func (w *world) act(d Decision, r *rand.Rand) {
	crash := r.IntN(4) == 0
	w.trail = append(w.trail, string(d.Do))
	switch d.Do {
	case ActWriteKey:
		w.pending = SlotNew
		if crash {
			return
		}
		if w.order != ADFirst && (w.step == StepPlanned || w.step == StepKeyPending) {
			w.step = StepKeyPending
		}
	case ActSendAD:
		w.step = StepADSending
		switch r.IntN(6) {
		case 0: // the DC refuses it (policy, rights): recorded as failed
			w.step = StepFailed
			return
		case 1, 2: // cut off before the write reached the DC
			return
		}
		w.adNew = true
		if crash {
			return // cut off after the write, unrecorded
		}
		w.step = StepADWritten
	case ActProbeAD:
		w.ad = ADRefusesNew
		if w.adNew {
			w.ad = ADAcceptsNew
		}
		return
	case ActCommitKey:
		w.current, w.pending = SlotNew, SlotEmpty
		if crash {
			return
		}
		w.step = StepDone
	case ActDiscardKey:
		w.pending = SlotEmpty
		if !crash {
			w.discarded = true
		}
	case ActMarkStep:
		w.step = d.Mark
		if d.Mark == StepFailed {
			w.discarded = true
		}
	}
	w.ad = ADNotAsked
}

func (w *world) facts() Facts {
	f := Facts{Step: w.step, Order: w.order, KeyPresent: w.present, AD: w.ad, Discarded: w.discarded}
	if w.present {
		f.Pending, f.Current = w.pending, w.current
	}
	return f
}

// TestJournalNeverLocksAnyoneOut walks many changes, key first, AD first
// and key only, carrying out Next's decisions with crashes after any
// effect, AD writes cut off or refused, and the key unplugged at random,
// and checks after every move that the password AD accepts is on the key
// or held in the journal, and that every change ends (done, or failed
// with the key cleaned up and the old password in force) once the key
// stays plugged in.
func TestJournalNeverLocksAnyoneOut(t *testing.T) {
	for _, order := range []Order{KeyFirst, ADFirst, KeyOnly} {
		for seed := range uint64(3000) {
			r := rand.New(rand.NewPCG(seed, 7))
			w := &world{step: StepPlanned, order: order, pending: SlotEmpty, current: SlotOther}
			if order == KeyOnly {
				w.adNew = true // the user typed the password AD has: it is the new one for the key
			}
			done := false
			for i := 0; i < 60 && !done; i++ {
				if i < 30 {
					w.present = r.IntN(3) != 0 // unplugged now and then, then left in
				} else {
					w.present = true
				}
				d := Next(w.facts())
				switch d.Do {
				case ActNone:
					done = true
				case ActWaitKey, ActWaitAD:
				default:
					w.act(d, r)
				}
				if err := w.check(); err != nil {
					t.Fatalf("%s, seed %d: %v after %v", order, seed, err, w.trail)
				}
			}
			ok := w.step == StepDone && w.current == SlotNew && w.adNew ||
				w.step == StepFailed && w.discarded && w.pending != SlotNew && w.current == SlotOther && !w.adNew
			if !done || !ok {
				t.Fatalf("%s, seed %d: ended at %s (key current %v, pending %v, AD new %v) after %v", order, seed, w.step, w.current, w.pending, w.adNew, w.trail)
			}
		}
	}
}
