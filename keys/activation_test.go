package keys

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNextActivation(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	accepted := func(done Step, ago time.Duration) *Progress {
		return &Progress{Done: done, At: now.Add(-ago), KeyVersion: 7}
	}
	tests := []struct {
		name     string
		status   Status
		gone     string
		version  int64
		progress *Progress
		typed    bool
		checked  bool // the code was checked in this attempt
		device   DeviceState
		want     Next
		why      string // part of the reason, for stops and discards
	}{
		// Starting.
		{name: "code typed", status: StatusReserved, typed: true, want: NextCheckCode},
		{name: "code typed with the key unplugged: still checked first", status: StatusReserved, typed: true, device: DeviceNotPresent, want: NextCheckCode},
		{name: "key plugged in, nothing recorded", status: StatusReserved, device: DeviceBlank, want: NextAskCode},
		{name: "not reserved", status: StatusActive, typed: true, want: NextStop, why: "active"},
		{name: "locked", status: StatusLocked, typed: true, want: NextStop, why: "locked"},
		{name: "employee removed", status: StatusReserved, gone: "its employee Ben was removed on 2026-12-01", typed: true, want: NextStop, why: "Ben was removed"},
		{name: "employee removed, with progress", status: StatusReserved, gone: "its employee Ben was removed", progress: accepted(StepGiveSecret, time.Minute), want: NextStop, why: "removed"},
		{name: "compromised with progress left", status: StatusCompromised, progress: accepted(StepCheckCode, time.Minute), want: NextStop, why: "final"},

		// The code accepted: the key gets its secret, whatever state the
		// device is in.
		{name: "accepted now, blank key", status: StatusReserved, progress: accepted(StepCheckCode, 0), checked: true, device: DeviceBlank, want: NextLink},
		{name: "accepted now, key already holds its secret (LINK answer lost)", status: StatusReserved, progress: accepted(StepCheckCode, 0), checked: true, device: DeviceOurs, want: NextConfirmSecret},
		{name: "accepted now, key locked by its PIN", status: StatusReserved, progress: accepted(StepCheckCode, 0), checked: true, device: DeviceOursLocked, want: NextWipeAndLink},
		{name: "accepted now, key holds its secret from before the unlock", status: StatusReserved, progress: accepted(StepCheckCode, 0), checked: true, device: DevicePrevious, want: NextWipeAndLink},
		{name: "resume, key holds its secret from before the unlock", status: StatusReserved, progress: accepted(StepCheckCode, time.Minute), device: DevicePrevious, want: NextAskCode},
		{name: "accepted now, key holds another secret", status: StatusReserved, progress: accepted(StepCheckCode, 0), checked: true, device: DeviceForeign, want: NextStop, why: "did not give it"},
		{name: "accepted now, key pulled out", status: StatusReserved, progress: accepted(StepCheckCode, 0), checked: true, device: DeviceNotPresent, want: NextWaitForKey},

		// Resuming without a code (the key plugged in again): the key may
		// prove it has its secret, but a secret is never given without the
		// code typed again.
		{name: "resume, key proves it holds its secret", status: StatusReserved, progress: accepted(StepCheckCode, time.Minute), device: DeviceOurs, want: NextConfirmSecret},
		{name: "resume, blank device claiming the serial", status: StatusReserved, progress: accepted(StepCheckCode, time.Minute), device: DeviceBlank, want: NextAskCode},
		{name: "resume, PIN-locked key", status: StatusReserved, progress: accepted(StepCheckCode, time.Minute), device: DeviceOursLocked, want: NextAskCode},
		{name: "resume, foreign device", status: StatusReserved, progress: accepted(StepCheckCode, time.Minute), device: DeviceForeign, want: NextStop, why: "did not give it"},
		{name: "accepted again while the secret was given", status: StatusReserved, progress: accepted(StepGiveSecret, time.Minute), typed: true, want: NextCheckCode},

		// The secret given: only the inventory is left, key or no key.
		{name: "secret given, key pulled out", status: StatusReserved, progress: accepted(StepGiveSecret, time.Minute), device: DeviceNotPresent, want: NextRecordActive},
		{name: "secret given, key present", status: StatusReserved, progress: accepted(StepGiveSecret, time.Minute), device: DeviceOurs, want: NextRecordActive},

		// Progress that no longer applies.
		{name: "window passed", status: StatusReserved, progress: accepted(StepCheckCode, ResumeWindow+time.Second), device: DeviceBlank, want: NextDiscard, why: "more than 15m0s ago"},
		{name: "window passed after the secret", status: StatusReserved, progress: accepted(StepGiveSecret, ResumeWindow+time.Second), want: NextDiscard, why: "accepted more than"},
		{name: "just inside the window", status: StatusReserved, progress: accepted(StepCheckCode, ResumeWindow), device: DeviceOurs, want: NextConfirmSecret},
		{name: "key changed since (new code)", status: StatusReserved, version: 8, progress: accepted(StepCheckCode, time.Minute), device: DeviceBlank, want: NextDiscard, why: "changed"},
		{name: "key changed, code typed", status: StatusReserved, version: 8, progress: accepted(StepGiveSecret, time.Minute), typed: true, want: NextDiscard, why: "changed"},
		{name: "unknown recorded step", status: StatusReserved, progress: &Progress{Done: "paint-it", At: now, KeyVersion: 7}, want: NextDiscard, why: "paint-it"},
		{name: "record-active left behind", status: StatusReserved, progress: accepted(StepRecordActive, time.Minute), want: NextDiscard, why: "record-active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.version
			if v == 0 {
				v = 7
			}
			got, why := NextActivation(ActivationFacts{Status: tt.status, KeyVersion: v, Progress: tt.progress, CodeTyped: tt.typed, CodeChecked: tt.checked, OwnerGone: tt.gone, Device: tt.device, Now: now})
			if got != tt.want {
				t.Fatalf("NextActivation = %s (%s), want %s", got, why, tt.want)
			}
			if (got == NextStop || got == NextDiscard) != (why != "") {
				t.Errorf("reason %q for %s: stops and discards say why, the others do not", why, got)
			}
			if !strings.Contains(why, tt.why) {
				t.Errorf("reason %q does not say %q", why, tt.why)
			}
		})
	}
}

// TestActivationAlwaysEnds plays every recorded progress against every
// device state, carrying out each decision as the application layer would
// (with the device as it was), and checks that each run ends within a few
// steps, in a decision that waits for a person or a key, or with the key
// Active, never going round in circles.
func TestActivationAlwaysEnds(t *testing.T) {
	now := time.Now()
	devices := []DeviceState{DeviceNotPresent, DeviceBlank, DeviceOurs, DeviceOursLocked, DeviceForeign, DevicePrevious}
	for _, done := range append([]Step{""}, ActivationSteps()...) {
		for _, dev := range devices {
			for _, typed := range []bool{false, true} {
				f := ActivationFacts{Status: StatusReserved, KeyVersion: 1, Device: dev, CodeTyped: typed, Now: now}
				if done != "" {
					f.Progress = &Progress{Done: done, At: now, KeyVersion: 1}
				}
				var trail []Next
				ended := false
				for len(trail) < 6 && !ended {
					next, _ := NextActivation(f)
					trail = append(trail, next)
					switch next {
					case NextStop, NextAskCode, NextWaitForKey:
						ended = true
					case NextDiscard:
						f.Progress = nil
					case NextCheckCode: // the code is right
						f.CodeTyped, f.CodeChecked = false, true
						p := &Progress{Done: StepCheckCode, At: now, KeyVersion: 1}
						if f.Progress != nil {
							p.Done = f.Progress.Done.Later(StepCheckCode)
						}
						f.Progress = p
					case NextLink, NextWipeAndLink, NextConfirmSecret:
						f.Progress = &Progress{Done: StepGiveSecret, At: now, KeyVersion: 1}
						f.Device = DeviceOurs
					case NextRecordActive:
						f.Status, f.Progress = StatusActive, nil
						ended = true
					}
				}
				if !ended {
					t.Errorf("from %q, key %s, code typed %v: no end after %v", done, dev, typed, trail)
				}
				if typed && dev != DeviceNotPresent && dev != DeviceForeign && f.Status != StatusActive {
					t.Errorf("from %q, key %s, with the right code typed: ended %v without activating", done, dev, trail)
				}
				// Without a code, a key is given its secret never.
				if !typed && slices.ContainsFunc(trail, func(n Next) bool { return n == NextLink || n == NextWipeAndLink }) {
					t.Errorf("from %q, key %s, no code typed: %v gives the key its secret", done, dev, trail)
				}
			}
		}
	}
}

func TestStepLater(t *testing.T) {
	if StepCheckCode.Later(StepGiveSecret) != StepGiveSecret || StepGiveSecret.Later(StepCheckCode) != StepGiveSecret || Step("").Later(StepCheckCode) != StepCheckCode {
		t.Error("Later does not keep the step further along")
	}
}
