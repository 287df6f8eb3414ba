package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"keydesk/internal/dbtamper"
	"keydesk/internal/simtest"
	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/keys/simkey"
	"keydesk/ldapsync"
	"keydesk/store"
)

// keyService is a test service with a master key and employees Ann and Ben
// synced from corp.
func keyService(t *testing.T) *Service {
	t.Helper()
	return keyServiceConf(t, "")
}

// keyServiceConf is keyService with more configuration.
func keyServiceConf(t *testing.T, conf string) *Service {
	t.Helper()
	s := newTestServiceConf(t, conf, "corp")
	var mk keys.MasterKey
	rand.Read(mk[:])
	s.master = &mk
	apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann"), user("corp", 2, "ben", "ben@example.com", "Ben")), nil, false)
	return s
}

// plugSim plugs a simulated key into the service, as the watcher does.
func plugSim(t testing.TB, s *Service, k *simkey.Key) {
	t.Helper()
	if _, err := s.KeyConnected(context.Background(), Plug{ID: "sim:" + k.Serial(), Kind: "simulated", Open: func() (proto.Transport, error) { return k.Plug(), nil }}); err != nil {
		t.Fatalf("plug %s: %v", k.Serial(), err)
	}
}

// activate assigns a plugged-in key to the employee and activates it.
func activate(t *testing.T, s *Service, serial, employee string) {
	t.Helper()
	ctx := context.Background()
	code, err := s.AssignKey(ctx, testAdmin, serial, employee)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.ActivateKey(ctx, testAdmin, serial, code.String()); err != nil || !res.Activated {
		t.Fatalf("activate %s: %+v %v", serial, res, err)
	}
}

// activeSim is a new key plugged in, assigned to the employee and
// activated.
func activeSim(t *testing.T, s *Service, serial, employee string) *simkey.Key {
	t.Helper()
	k := simtest.NewKey(t, serial)
	plugSim(t, s, k)
	activate(t, s, serial, employee)
	return k
}

func keyStatus(t *testing.T, s *Service, serial string) KeyView {
	t.Helper()
	k, err := s.Key(context.Background(), testAdmin, serial)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// simInfo reads what a simulated key says about itself over the protocol.
func simInfo(t *testing.T, k *simkey.Key) proto.Info {
	t.Helper()
	d, err := proto.Open(context.Background(), k.Plug())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info, err := d.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func auditActions(t *testing.T, s *Service, target string) []string {
	t.Helper()
	var out []string
	s.AuditEntries(context.Background(), testAdmin, store.AuditFilter{}, func(e store.AuditEntry) error {
		if e.Target == target {
			out = append(out, e.Action+":"+e.Outcome)
		}
		return nil
	})
	return out
}

func TestPluggedKeyRegistersAsReady(t *testing.T) {
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-0001")
	plugSim(t, s, k)
	v := keyStatus(t, s, "SIM-0001")
	if v.Status != "ready" || !v.PluggedIn || v.LastSeen == nil || v.Model == "" {
		t.Errorf("plugged key = %+v; want ready, plugged in, seen, with its model", v)
	}
	s.KeyDisconnected("sim:SIM-0001")
	if keyStatus(t, s, "SIM-0001").PluggedIn {
		t.Error("an unplugged key still shows as plugged in")
	}
	if err := s.AddKeys(context.Background(), testAdmin, []string{"LIST-1", "SIM-0001"}); err == nil || !strings.Contains(err.Error(), "SIM-0001") {
		t.Errorf("adding a known serial: %v, want an error naming it", err)
	}
	if _, err := s.Key(context.Background(), testAdmin, "LIST-1"); err == nil {
		t.Error("a failed add kept some of its keys")
	}
}

func TestActivationEndToEnd(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-0002")
	plugSim(t, s, k)
	code, err := s.AssignKey(ctx, testAdmin, "SIM-0002", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if v := keyStatus(t, s, "SIM-0002"); v.Status != "reserved" || v.Owner != "Ann" || v.CodeExpiresAt == nil {
		t.Fatalf("assigned key = %+v", v)
	}
	if _, err := s.AssignKey(ctx, testAdmin, "SIM-0002", "ben@example.com"); err == nil {
		t.Error("a reserved key was assigned a second time")
	}
	if err := s.AddKeys(ctx, testAdmin, []string{"OTHER-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AssignKey(ctx, testAdmin, "OTHER-1", "ann@example.com"); !errors.Is(err, store.ErrEmployeeHasKey) {
		t.Errorf("a second key for Ann: %v, want ErrEmployeeHasKey", err)
	}
	res, err := s.ActivateKey(ctx, testAdmin, "SIM-0002", code.String())
	if err != nil || !res.Activated {
		t.Fatalf("activate with the right code: %+v %v", res, err)
	}
	if v := keyStatus(t, s, "SIM-0002"); v.Status != "active" || v.CodeExpiresAt != nil {
		t.Errorf("activated key = %+v", v)
	}
	if info := simInfo(t, k); info.State != proto.StateLinked {
		t.Errorf("the key itself is %s, want linked", info.State)
	}
	if _, err := s.ActivateKey(ctx, testAdmin, "SIM-0002", code.String()); err == nil {
		t.Error("a used code activated the key again")
	}
	got := auditActions(t, s, "key:SIM-0002")
	// Each step of the activation is in the log.
	want := []string{"key.register:success", "key.assign:success", "key.code-accepted:success", "key.secret-given:success", "key.activate:success"}
	if len(got) < len(want) || fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("audit = %v, want it to start %v", got, want)
	}
	// No secret in the audit log.
	s.AuditEntries(ctx, testAdmin, store.AuditFilter{}, func(e store.AuditEntry) error {
		if strings.Contains(fmt.Sprint(e.Details), code.String()) || strings.Contains(fmt.Sprint(e.Details), strings.ReplaceAll(code.String(), " ", "")) {
			t.Errorf("audit entry %d holds the activation code", e.Seq)
		}
		return nil
	})
}

func TestWrongCodesLockTheKey(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-0003")
	plugSim(t, s, k)
	code, err := s.AssignKey(ctx, testAdmin, "SIM-0003", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	wrong := "000000"
	if code.String() == "000 000" {
		wrong = "000001"
	}
	for i, wantLeft := range []int{2, 1} {
		res, err := s.ActivateKey(ctx, testAdmin, "SIM-0003", wrong)
		if !errors.Is(err, ErrWrongCode) || res.Left != wantLeft {
			t.Fatalf("wrong code %d: %+v %v; want ErrWrongCode with %d left", i+1, res, err, wantLeft)
		}
		// The count lives in the database: a restarted console sees it.
		s = New(s.cfg, s.st, WithMasterKey(*s.master), WithTrustedMaker(simtest.Maker(t).Cert()))
		plugSim(t, s, k)
	}
	res, err := s.ActivateKey(ctx, testAdmin, "SIM-0003", wrong)
	if !errors.Is(err, ErrKeyLocked) || !res.Locked {
		t.Fatalf("third wrong code: %+v %v; want locked", res, err)
	}
	if v := keyStatus(t, s, "SIM-0003"); v.Status != "locked" || v.Reason != "invalid-activation-code" {
		t.Errorf("key = %+v; want locked (invalid-activation-code)", v)
	}
	if _, err := s.ActivateKey(ctx, testAdmin, "SIM-0003", code.String()); err == nil {
		t.Error("the right code activated a locked key")
	}
	if got := auditActions(t, s, "key:SIM-0003"); strings.Count(strings.Join(got, " "), "key.activate:failure") != 3 {
		t.Errorf("audit %v: want every wrong attempt recorded", got)
	}
	// Unlock issues a new code; the key activates with it.
	newCode, err := s.UnlockKey(ctx, testAdmin, "SIM-0003", "called the employee")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.ActivateKey(ctx, testAdmin, "SIM-0003", newCode.String()); err != nil || !res.Activated {
		t.Fatalf("activate after unlock: %+v %v", res, err)
	}
}

func TestExpiredCode(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-0004")
	plugSim(t, s, k)
	code, err := s.AssignKey(ctx, testAdmin, "SIM-0004", "ben@example.com")
	if err != nil {
		t.Fatal(err)
	}
	s.st.SetClock(func() time.Time { return time.Now().Add(73 * time.Hour) })
	if _, err := s.ActivateKey(ctx, testAdmin, "SIM-0004", code.String()); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("expired code: %v, want ErrCodeExpired", err)
	}
	newCode, err := s.RenewCode(ctx, testAdmin, "SIM-0004")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.ActivateKey(ctx, testAdmin, "SIM-0004", newCode.String()); err != nil || !res.Activated {
		t.Errorf("activate with the renewed code: %+v %v", res, err)
	}
}

func TestUnplugMidActivationLeavesAConsistentState(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-0005")
	plugSim(t, s, k)
	code, err := s.AssignKey(ctx, testAdmin, "SIM-0005", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// The key is pulled out as KeyDesk sends it the secret.
	s.KeyDisconnected("sim:SIM-0005")
	if _, err := s.KeyConnected(ctx, Plug{ID: "sim:SIM-0005", Kind: "simulated", Open: func() (proto.Transport, error) {
		return &interrupt{Transport: k.Plug(), at: "request"}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ActivateKey(ctx, testAdmin, "SIM-0005", code.String()); err == nil || !strings.Contains(err.Error(), "stays reserved") {
		t.Fatalf("activation with the key pulled out: %v", err)
	}
	if v := keyStatus(t, s, "SIM-0005"); v.Status != "reserved" || v.CodeExpiresAt == nil {
		t.Fatalf("after the unplug the key is %+v; want reserved with its code", v)
	}
	// Plugged in again, the key is still blank: it waits for the code,
	// and the same code finishes the job.
	s.KeyDisconnected("sim:SIM-0005")
	plugSim(t, s, k)
	if v := keyStatus(t, s, "SIM-0005"); v.Status != "reserved" {
		t.Fatalf("a blank key plugged in again became %s without its code", v.Status)
	}
	if res, err := s.ActivateKey(ctx, testAdmin, "SIM-0005", code.String()); err != nil || !res.Activated {
		t.Fatalf("activate after re-plugging: %+v %v", res, err)
	}
	if _, err := s.ActivateKey(ctx, testAdmin, "SIM-0005", code.String()); err == nil {
		t.Error("the code activated the key a second time")
	}
}

// interrupt cuts a conversation at a LINK: before the request reaches the
// key ("request"), or after the key handled it, losing its answer
// ("answer").
type interrupt struct {
	proto.Transport
	at      string
	sentNow bool
}

var errCut = errors.New("the key was pulled out")

func (c *interrupt) WriteReport(r []byte) error {
	if r[4] == byte(proto.CmdLink)|0x80 {
		if c.at == "request" {
			return errCut
		}
		c.sentNow = true
	}
	return c.Transport.WriteReport(r)
}

func (c *interrupt) ReadReport(d time.Duration) ([]byte, error) {
	r, err := c.Transport.ReadReport(d)
	if err == nil && c.sentNow && len(r) > 4 && r[4] == byte(proto.CmdLink)|0x80 {
		return nil, errCut
	}
	return r, err
}

// TestActivationResumesAfterEveryInterruption cuts an activation at the
// LINK, both ways, and plugs the key in again inside and outside the resume
// window. A key that got its secret (the answer was lost) and comes back
// inside the window proves it and is recorded Active by itself; a blank one
// waits for the code, and so does any key after the window; the same code
// then activates it. Never is a key recorded Active that does not hold its
// secret, and never is a secret given without the code typed.
func TestActivationResumesAfterEveryInterruption(t *testing.T) {
	for _, at := range []string{"request", "answer"} {
		for _, late := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/late=%v", at, late), func(t *testing.T) {
				ctx := context.Background()
				s := keyService(t)
				k := simtest.NewKey(t, "SIM-CUT")
				plugSim(t, s, k)
				code, err := s.AssignKey(ctx, testAdmin, "SIM-CUT", "ann@example.com")
				if err != nil {
					t.Fatal(err)
				}
				s.KeyDisconnected("sim:SIM-CUT")
				if _, err := s.KeyConnected(ctx, Plug{ID: "sim:cut", Kind: "simulated", Open: func() (proto.Transport, error) {
					return &interrupt{Transport: k.Plug(), at: at}, nil
				}}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.ActivateKey(ctx, testAdmin, "SIM-CUT", code.String()); err == nil {
					t.Fatal("the interrupted activation succeeded")
				}
				wantDevice := proto.StateBlank
				if at == "answer" {
					wantDevice = proto.StateLinked
				}
				if info := simInfo(t, k); info.State != wantDevice {
					t.Fatalf("after the cut the key is %s, want %s", info.State, wantDevice)
				}
				s.KeyDisconnected("sim:cut")
				if late {
					s.st.SetClock(func() time.Time { return time.Now().Add(keys.ResumeWindow + time.Minute) })
				}
				plugSim(t, s, k)
				v := keyStatus(t, s, "SIM-CUT")
				if resumes := at == "answer" && !late; resumes != (v.Status == "active") {
					t.Fatalf("plugged in again (late %v): %s; want active only for a key that already holds its secret, inside the window", late, v.Status)
				}
				if v.Status == "reserved" {
					if info := simInfo(t, k); info.State != wantDevice {
						t.Fatalf("waiting for the code, the key changed to %s", info.State)
					}
					if res, err := s.ActivateKey(ctx, testAdmin, "SIM-CUT", code.String()); err != nil || !res.Activated {
						t.Fatalf("the same code after plugging in again: %+v %v", res, err)
					}
				}
				if info := simInfo(t, k); info.State != proto.StateLinked {
					t.Errorf("the active key is %s, want linked", info.State)
				}
				kk, err := s.st.KeyBySerial(ctx, "SIM-CUT")
				if err != nil {
					t.Fatal(err)
				}
				if p, err := s.st.Activation(ctx, kk.ID); err != nil || p != nil {
					t.Errorf("progress left after the activation: %+v %v", p, err)
				}
			})
		}
	}
}

func TestTwoConsolesCannotBothActivate(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-0006")
	plugSim(t, s, k)
	code, err := s.AssignKey(ctx, testAdmin, "SIM-0006", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	other := New(s.cfg, s.st, WithMasterKey(*s.master), WithTrustedMaker(simtest.Maker(t).Cert())) // a second console on the same database
	plugSim(t, other, k)
	var wg sync.WaitGroup
	results := make([]bool, 2)
	for i, svc := range []*Service{s, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := svc.ActivateKey(ctx, testAdmin, "SIM-0006", code.String())
			results[i] = res.Activated
		}()
	}
	wg.Wait()
	if results[0] == results[1] {
		t.Fatalf("activations succeeded: %v; want exactly one", results)
	}
	if v := keyStatus(t, s, "SIM-0006"); v.Status != "active" {
		t.Errorf("key = %s, want active", v.Status)
	}
}

func TestLeaverKeyDeactivatedThenWipedWhenPlugged(t *testing.T) {
	s := keyService(t)
	k := activeSim(t, s, "SIM-0007", "ben@example.com")
	s.KeyDisconnected("sim:SIM-0007")
	// Ben leaves the sync group.
	sum := apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann")), map[string]string{guid("corp", 2): ldapsync.ReasonLeftGroup}, false)
	if sum.KeysDeactivated != 1 {
		t.Errorf("summary %+v: want one key deactivated", sum)
	}
	if v := keyStatus(t, s, "SIM-0007"); v.Status != "deactivated" || v.Reason != "left-sync-group" {
		t.Fatalf("Ben's key = %+v; want deactivated (left-sync-group)", v)
	}
	plugSim(t, s, k)
	v := keyStatus(t, s, "SIM-0007")
	if v.Status != "ready" || v.EmployeeID != nil {
		t.Errorf("plugged deactivated key = %+v; want ready with no owner", v)
	}
	if info := simInfo(t, k); info.State != proto.StateBlank {
		t.Errorf("the key itself is %s, want blank (wiped)", info.State)
	}
	if got := auditActions(t, s, "key:SIM-0007"); !strings.Contains(strings.Join(got, " "), "key.deactivate:success") || !strings.Contains(strings.Join(got, " "), "key.wipe:success") {
		t.Errorf("audit %v: want deactivate and wipe", got)
	}
}

func TestAdminActionsFollowTheLifecycle(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	if err := s.AddKeys(ctx, testAdmin, []string{"K1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SuspendKey(ctx, testAdmin, "K1", ""); err == nil || !strings.Contains(err.Error(), "ready") {
		t.Errorf("suspending a ready key: %v, want a refusal naming the status", err)
	}
	if err := s.CompromiseKey(ctx, testAdmin, "K1", keys.ReasonStolen, "reported by Ann"); err != nil {
		t.Fatal(err)
	}
	if v := keyStatus(t, s, "K1"); v.Status != "compromised" || v.Reason != "stolen" {
		t.Errorf("key = %+v", v)
	}
	if _, err := s.AssignKey(ctx, testAdmin, "K1", "ann@example.com"); err == nil || !strings.Contains(err.Error(), "final") {
		t.Errorf("assigning a compromised key: %v", err)
	}
	viewer := Actor{Name: "v", Role: RoleAuditor}
	if err := s.AddKeys(ctx, viewer, []string{"K2"}); !errors.Is(err, ErrPermission) {
		t.Errorf("an auditor added a key: %v", err)
	}
}

// TestASecondKeyWithTheSameSerialIsRefused: two connections proving one
// serial (the same key seen twice, say through a hub and a kiosk) cannot
// both be that key; the second is refused, and its unplug does not unplug
// the first. (Another device claiming the serial does not prove it: see
// TestAClonedKeyChangesNothing.)
func TestASecondKeyWithTheSameSerialIsRefused(t *testing.T) {
	s := keyService(t)
	first := simtest.NewKey(t, "DUP-1")
	plugSim(t, s, first)
	err := plugAs(s, "sim:other", first)
	if err == nil || !strings.Contains(err.Error(), "which the key at sim:DUP-1 has") {
		t.Fatalf("a second key claiming DUP-1: %v, want a refusal", err)
	}
	s.KeyDisconnected("sim:other")
	if !keyStatus(t, s, "DUP-1").PluggedIn {
		t.Error("unplugging the refused key unplugged the first")
	}
}

// TestALifecycleChangeEndsAnActivationUnderWay: a withdrawal while an
// activation waits for its key discards the recorded progress.
func TestALifecycleChangeEndsAnActivationUnderWay(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-WD")
	plugSim(t, s, k)
	code, err := s.AssignKey(ctx, testAdmin, "SIM-WD", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	s.KeyDisconnected("sim:SIM-WD")
	if _, err := s.KeyConnected(ctx, Plug{ID: "sim:cut", Kind: "simulated", Open: func() (proto.Transport, error) {
		return &interrupt{Transport: k.Plug(), at: "request"}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	s.ActivateKey(ctx, testAdmin, "SIM-WD", code.String())
	kk, _ := s.st.KeyBySerial(ctx, "SIM-WD")
	if p, _ := s.st.Activation(ctx, kk.ID); p == nil {
		t.Fatal("no progress recorded after the accepted code")
	}
	if err := s.WithdrawKey(ctx, testAdmin, "SIM-WD", ""); err != nil {
		t.Fatal(err)
	}
	if p, err := s.st.Activation(ctx, kk.ID); err != nil || p != nil {
		t.Errorf("progress after the withdrawal: %+v %v; want none", p, err)
	}
}

// TestEveryPathThatEndsAnEmployeeEndsTheirKey: removing a person by hand,
// or their account being disabled, deactivates their key in the same
// transaction; and a key whose employee is gone (data from before this
// rule) is refused a code, an unlock and an activation, saying who and
// since when.
func TestEveryPathThatEndsAnEmployeeEndsTheirKey(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)

	// By hand.
	if _, err := s.AddEmployee(ctx, testAdmin, "guard@example.com", "Night Guard"); err != nil {
		t.Fatal(err)
	}
	activeSim(t, s, "SIM-GUARD", "guard@example.com")
	if _, err := s.RemoveEmployee(ctx, testAdmin, "guard@example.com"); err != nil {
		t.Fatal(err)
	}
	if v := keyStatus(t, s, "SIM-GUARD"); v.Status != "deactivated" || v.Reason != "employee-removed" {
		t.Errorf("the removed person's key is %s (%s), want deactivated (employee-removed)", v.Status, v.Reason)
	}

	// Disabled in AD: Ben's account is disabled by the next sync.
	k2 := simtest.NewKey(t, "SIM-BEN")
	plugSim(t, s, k2)
	if _, err := s.AssignKey(ctx, testAdmin, "SIM-BEN", "ben@example.com"); err != nil {
		t.Fatal(err)
	}
	ben := user("corp", 2, "ben", "ben@example.com", "Ben")
	ben.Disabled = true
	apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann"), ben), nil, false)
	if v := keyStatus(t, s, "SIM-BEN"); v.Status != "deactivated" || v.Reason != "left-sync-group" {
		t.Errorf("a disabled employee's key is %s (%s), want deactivated", v.Status, v.Reason)
	}

	// A key left reserved for someone already removed (an old database).
	k3 := simtest.NewKey(t, "SIM-OLD")
	plugSim(t, s, k3)
	code3, err := s.AssignKey(ctx, testAdmin, "SIM-OLD", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ann := byEmail(t, s, "ann@example.com")
	if err := s.st.Update(ctx, func(tx *store.Tx) error {
		e, err := tx.Employee(ctx, ann.ID)
		if err != nil {
			return err
		}
		now := tx.Now()
		e.Status, e.RemovedAt = store.StatusRemoved, &now
		return tx.UpdateEmployee(ctx, e)
	}); err != nil {
		t.Fatal(err)
	}
	for name, try := range map[string]func() error{
		"activate":   func() error { _, err := s.ActivateKey(ctx, testAdmin, "SIM-OLD", code3.String()); return err },
		"renew-code": func() error { _, err := s.RenewCode(ctx, testAdmin, "SIM-OLD"); return err },
	} {
		if err := try(); err == nil || !strings.Contains(err.Error(), "its employee Ann (ann@example.com) was removed on") {
			t.Errorf("%s a key whose employee is gone: %v, want a refusal naming who and since when", name, err)
		}
	}
	if v := keyStatus(t, s, "SIM-OLD"); v.Status != "reserved" || v.CodeAttempts != 0 {
		t.Errorf("the refused key changed: %+v", v)
	}
	if info := simInfo(t, k3); info.State != proto.StateBlank {
		t.Errorf("the key was given its secret: %s", info.State)
	}
}

// TestACodeIsCountedBeforeItIsChecked: when the database cannot record an
// attempt (full, read-only), the code is not checked at all: no answer
// tells a right code from a wrong one, and the key gets no secret.
func TestACodeIsCountedBeforeItIsChecked(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-FULL")
	plugSim(t, s, k)
	code, err := s.AssignKey(ctx, testAdmin, "SIM-FULL", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// From now on no key row can be written, as on a full disk.
	dbtamper.Exec(t, s.st.Path(), `CREATE TRIGGER full BEFORE UPDATE ON keys BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)
	wrong := "000000"
	if code.String() == "000 000" {
		wrong = "000001"
	}
	var answers []string
	for _, c := range []string{wrong, code.String()} {
		res, err := s.ActivateKey(ctx, testAdmin, "SIM-FULL", c)
		if err == nil || res.Activated || errors.Is(err, ErrWrongCode) || !strings.Contains(err.Error(), "could not be recorded") {
			t.Fatalf("activating with writes failing: %+v %v; want a refusal before any check", res, err)
		}
		answers = append(answers, strings.ReplaceAll(err.Error(), c, "CODE"))
	}
	if answers[0] != answers[1] {
		t.Errorf("a wrong and a right code get different answers:\n%s\n%s", answers[0], answers[1])
	}
	if info := simInfo(t, k); info.State != proto.StateBlank {
		t.Errorf("the key got its secret: %s", info.State)
	}
}

// TestACodeHashCopiedToAnotherKeyFails: whoever can write the database
// copies the code hash of a key they know the code of onto another key;
// that code does not activate the other key.
func TestACodeHashCopiedToAnotherKeyFails(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	mine, theirs := simtest.NewKey(t, "SIM-MINE"), simtest.NewKey(t, "SIM-THEIRS")
	plugSim(t, s, mine)
	plugSim(t, s, theirs)
	myCode, err := s.AssignKey(ctx, testAdmin, "SIM-MINE", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AssignKey(ctx, testAdmin, "SIM-THEIRS", "ben@example.com"); err != nil {
		t.Fatal(err)
	}
	dbtamper.Exec(t, s.st.Path(), `UPDATE keys SET (code_hash, code_expires_at) = (SELECT code_hash, code_expires_at FROM keys WHERE serial = 'SIM-MINE') WHERE serial = 'SIM-THEIRS'`)
	res, err := s.ActivateKey(ctx, testAdmin, "SIM-THEIRS", myCode.String())
	if !errors.Is(err, ErrWrongCode) || res.Activated {
		t.Fatalf("my code on their key, with my hash copied there: %+v %v; want a wrong code", res, err)
	}
	if info := simInfo(t, theirs); info.State != proto.StateBlank {
		t.Errorf("their key got a secret: %s", info.State)
	}
}
