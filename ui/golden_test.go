package ui

import (
	"bytes"
	"fmt"
	"io"
	"strings"
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
		{"details", []tea.Msg{keys("j"), keys("j"), keys("j"), keyEnter}, ""},
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
				// The selected employee's details are read when selected:
				// the screen is taken once the console stopped drawing.
				settle(tm.Output(), 300*time.Millisecond)
				if err := tm.Quit(); err != nil {
					t.Fatal(err)
				}
				final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
				if v := final.View(); strings.Contains(v, "loading…") {
					t.Fatalf("the screen was taken while something was still loading:\n%s", v)
				}
				teatest.RequireEqualOutput(t, []byte(final.View()))
			})
		}
	}
}

// settle waits until the program's output has been quiet for quiet (at
// most 10 s): what its last keys and loads started has been drawn.
func settle(out io.Reader, quiet time.Duration) {
	buf := make([]byte, 32<<10)
	last, deadline := time.Now(), time.Now().Add(10*time.Second)
	for time.Now().Before(deadline) && time.Since(last) < quiet {
		if n, _ := out.Read(buf); n > 0 {
			last = time.Now()
			continue
		}
		time.Sleep(20 * time.Millisecond)
	}
}
