package ui

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

// TestGolden runs the console as a Bubble Tea program (teatest) at the two
// reference sizes and compares its main screens with the golden files in
// testdata (go test ./ui -update rewrites them). Colours are off (ASCII
// profile) so that the files are stable.
func TestGolden(t *testing.T) {
	svc := fixture(t, 60)
	// Each screen's keys, and what the screen shows once they took effect
	// (the console loads in commands: a key sent before its pane loaded, or
	// a screen taken before a dialog opened, would make the test flaky).
	screens := []struct {
		name string
		keys []tea.Msg
		want string
	}{
		{"employees", nil, ""},
		{"details", []tea.Msg{keys("j"), keys("j"), keys("j"), keyEnter}, "Engineering"}, // read on selection
		{"filter", append([]tea.Msg{keys("/")}, typeText("anna")...), ""},
		{"domains", []tea.Msg{keyShiftTab}, ""},
		{"help", []tea.Msg{keys("?")}, "Keys for"},
		{"confirm", []tea.Msg{keyShiftTab, keys("a")}, ""},
		{"keys", []tea.Msg{keyTab, keys("j")}, ""},
		{"assign", []tea.Msg{keyTab, keys("a")}, "Assign key"},
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		for _, sc := range screens {
			t.Run(fmt.Sprintf("%dx%d/%s", size[0], size[1], sc.name), func(t *testing.T) {
				m := New(svc, Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC})
				defer m.Close()
				tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(size[0], size[1]))
				// Every pane loaded: the domains, the employees, the keys, the
				// activity.
				teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
					return bytes.Contains(b, []byte("ok 5m ago")) && bytes.Contains(b, []byte("Person 000005")) &&
						bytes.Contains(b, []byte("KD-0002")) && bytes.Contains(b, []byte("cli:root"))
				}, teatest.WithDuration(10*time.Second))
				for _, k := range sc.keys {
					tm.Send(k)
				}
				if sc.want != "" {
					teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(sc.want)) }, teatest.WithDuration(10*time.Second))
				}
				if err := tm.Quit(); err != nil {
					t.Fatal(err)
				}
				final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
				teatest.RequireEqualOutput(t, []byte(final.View()))
			})
		}
	}
}
