package ui

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/enroll"
	"keydesk/internal/simtest"
	"keydesk/keys/proto"
)

// kioskDriver runs a kiosk as a host program would: each command's
// messages go back into it (a tea.Quit is noted).
type kioskDriver struct {
	t     *testing.T
	k     *Kiosk
	quit  bool
	clock time.Time
}

func (d *kioskDriver) send(msg tea.Msg) {
	d.t.Helper()
	_, cmd := d.k.Update(msg)
	d.run(cmd)
}

func (d *kioskDriver) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			d.run(c)
		}
	case tea.QuitMsg:
		d.quit = true
	case tickMsg, nil:
	default:
		d.send(msg)
	}
}

func (d *kioskDriver) typeText(s string) {
	for _, r := range s {
		d.send(keys(string(r)))
	}
}

// TestTheKioskServesOnlyTheKeyPluggedInHere: the kiosk starts at "plug in
// your key" and shows no one; a reserved key plugged in here opens its
// activation (naming only its owner), and the right code activates it;
// quitting keys do nothing; an active key opens the person's password
// change, which returns to the start when left alone; only the operator's
// exit code leaves the kiosk.
func TestTheKioskServesOnlyTheKeyPluggedInHere(t *testing.T) {
	svc := fixture(t, 5)
	sk := simtest.NewKey(t, "KD-0001")
	if _, err := svc.KeyConnected(t.Context(), app.Plug{ID: "sim", Kind: "simulated", Place: app.PlaceLocal, Open: func() (proto.Transport, error) { return sk.Plug(), nil }}); err != nil {
		t.Fatal(err)
	}
	code, err := svc.AssignKey(t.Context(), testActor, "KD-0001", "user000000@example.com")
	if err != nil {
		t.Fatal(err)
	}
	d := &kioskDriver{t: t, clock: fixedNow}
	d.k = NewKiosk(svc, KioskOptions{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return d.clock }, ExitCode: "4711", NoEvents: true})
	d.send(tea.WindowSizeMsg{Width: 100, Height: 30})
	d.run(d.k.Init())
	others := []string{"Anna Smith", "Mallory", "Person 000001", "Person 000002", "asmith", "KD-0002"}
	noOneElse := func(when string) {
		t.Helper()
		v := d.k.View()
		for _, o := range others {
			if strings.Contains(v, o) {
				t.Errorf("%s, the kiosk shows %q:\n%s", when, o, v)
			}
		}
	}
	// KD-0001 was plugged in before the kiosk started: it is served at once.
	if v := d.k.View(); !strings.Contains(v, "Activate key KD-0001 for Person 000000") {
		t.Fatalf("a reserved key plugged in when the kiosk starts:\n%s", v)
	}
	d.send(eventMsg{app.KeyPlugged{Serial: "KD-0001", Place: app.PlaceLocal, PluggedIn: false}})
	if v := d.k.View(); !strings.Contains(v, "Plug in your key.") {
		t.Fatalf("the key pulled out, the start screen:\n%s", v)
	}
	noOneElse("at the start")

	d.send(eventMsg{app.KeyPlugged{Serial: "KD-0001", Place: app.PlaceLocal, PluggedIn: true, Status: "reserved"}})
	if v := d.k.View(); !strings.Contains(v, "Activate key KD-0001 for Person 000000") {
		t.Fatalf("a reserved key plugged in:\n%s", v)
	}
	noOneElse("activating")
	for _, quit := range []tea.KeyMsg{{Type: tea.KeyCtrlC}, {Type: tea.KeyEsc}, keys("q")} {
		d.send(quit)
		if d.quit {
			t.Fatalf("%v left the kiosk", quit)
		}
	}
	d.send(eventMsg{app.KeyPlugged{Serial: "KD-0001", Place: app.PlaceLocal, PluggedIn: true, Status: "reserved"}})
	d.typeText(strings.ReplaceAll(code.String(), " ", ""))
	d.send(tea.KeyMsg{Type: tea.KeyEnter})
	if v := d.k.View(); !strings.Contains(v, "key KD-0001 is active") || !strings.Contains(v, "Plug in your key.") {
		t.Fatalf("after the right code the kiosk shows:\n%s", v)
	}

	// The active key, plugged in again: the person's password change.
	d.send(eventMsg{app.KeyPlugged{Serial: "KD-0001", Place: app.PlaceLocal, PluggedIn: true, Status: "active"}})
	if v := d.k.View(); !strings.Contains(v, "Change your password at key KD-0001") {
		t.Fatalf("an active key plugged in:\n%s", v)
	}
	noOneElse("changing a password")
	d.clock = d.clock.Add(DefaultKioskIdle + time.Second)
	d.send(tickMsg(d.clock))
	if v := d.k.View(); !strings.Contains(v, "Plug in your key.") || !strings.Contains(v, "left alone") {
		t.Fatalf("after a minute left alone the kiosk shows:\n%s", v)
	}

	// A suspended key gets a word, not a screen.
	d.send(eventMsg{app.KeyPlugged{Serial: "KD-0001", Place: app.PlaceLocal, PluggedIn: true, Status: "suspended"}})
	if v := d.k.View(); !strings.Contains(v, "Key KD-0001 is suspended: please see the helpdesk.") {
		t.Errorf("a suspended key:\n%s", v)
	}

	// Leaving: only with the exit code.
	d.send(tea.KeyMsg{Type: tea.KeyCtrlX})
	d.typeText("1234")
	d.send(tea.KeyMsg{Type: tea.KeyEnter})
	if d.quit || !strings.Contains(d.k.View(), "wrong exit code") {
		t.Fatalf("a wrong exit code: quit %v\n%s", d.quit, d.k.View())
	}
	d.send(tea.KeyMsg{Type: tea.KeyCtrlX})
	d.typeText("4711")
	d.send(tea.KeyMsg{Type: tea.KeyEnter})
	if !d.quit {
		t.Fatal("the exit code did not leave the kiosk")
	}
}

// TestTheKioskEnrollsWithoutAKey: the kiosk's start screen offers the
// enrollment of an authenticator app; e opens it, the code of the
// invitation shows the secret (as text on a screen too small for the QR
// code) and the app's code enrolls, back at the start; left alone, the
// enrollment returns to the start too.
func TestTheKioskEnrollsWithoutAKey(t *testing.T) {
	svc, sink := mailFixture(t, 5)
	code := inviteCode(t, svc, sink, "user000000@example.com")
	kiosk := app.Actor{Name: "kiosk:hall", Role: app.RoleKiosk, Place: "kiosk:hall"}
	d := &kioskDriver{t: t, clock: fixedNow}
	d.k = NewKiosk(svc, KioskOptions{Actor: kiosk, Renderer: asciiRenderer(), Now: func() time.Time { return d.clock }, ExitCode: "4711", NoEvents: true, Places: []string{kiosk.Place}})
	d.send(tea.WindowSizeMsg{Width: 100, Height: 30})
	d.run(d.k.Init())
	if v := d.k.View(); !strings.Contains(v, "Plug in your key.") || !strings.Contains(v, "e: enroll an authenticator app (with the code from your") {
		t.Fatalf("the start screen does not offer the enrollment:\n%s", v)
	}
	d.send(keys("e"))
	if v := d.k.View(); !strings.Contains(v, "Enroll an authenticator app") || !strings.Contains(v, "enter check the code") {
		t.Fatalf("e did not open the enrollment:\n%s", v)
	}
	d.typeText(code)
	d.send(keyEnter)
	e, ok := d.k.screen.(*Enroll)
	if v := d.k.View(); !ok || e.step != enrollScan || !strings.Contains(v, "Person 000000 · user000000@example.com") ||
		!strings.Contains(v, "too small for the QR code") || !strings.Contains(v, inGroups(e.start.Secret.Base32(), 4)) {
		t.Fatalf("the right code at a 100x30 kiosk:\n%s", v)
	}
	for _, other := range []string{"Anna Smith", "Person 000001", "KD-0002"} {
		if strings.Contains(d.k.View(), other) {
			t.Errorf("the enrollment shows %q", other)
		}
	}
	// Left alone, the screen returns to the start (and forgets the code).
	d.clock = d.clock.Add(DefaultKioskIdle + time.Second)
	d.send(tickMsg(d.clock))
	if v := d.k.View(); d.k.screen != nil || !strings.Contains(v, "left alone") || strings.Contains(v, "Plug your key in again") {
		t.Fatalf("an enrollment left alone:\n%s", v)
	}

	// Again, to the end: the app's code enrolls.
	d.send(keys("e"))
	d.typeText(code)
	d.send(keyEnter)
	e = d.k.screen.(*Enroll)
	totp, err := enroll.CodeAt(e.start.Secret, enroll.Step(storeNow))
	if err != nil {
		t.Fatal(err)
	}
	d.typeText(totp)
	d.send(keyEnter)
	if v := d.k.View(); !strings.Contains(v, "Authenticator enrolled for Person 000000") {
		t.Fatalf("the app's code did not enroll:\n%s", v)
	}
	d.send(keyEnter)
	if v := d.k.View(); d.k.screen != nil || !strings.Contains(v, "Plug in your key.") || !strings.Contains(v, "authenticator enrolled for Person 000000") {
		t.Fatalf("after the enrollment the kiosk shows:\n%s", v)
	}
	if d.quit {
		t.Error("the enrollment left the kiosk")
	}
}
