package simkey_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"keydesk/keys/proto"
	"keydesk/keys/simkey"
)

func TestSaveLoad(t *testing.T) {
	k, d, _, s := linked(t)
	ctx := ctxT(t)
	cur := proto.Credential{Login: "dave", Password: "current-pw"}
	pend := proto.Credential{Login: "dave", Password: "pending-pw"}
	for _, step := range []func() error{
		func() error { return s.WriteCredential(ctx, 3, cur) },
		func() error { return s.Commit(ctx, 3) },
		func() error { return s.WriteCredential(ctx, 3, pend) },
		func() error { return s.SetPIN(ctx, "8642") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.VerifyPIN(ctx, "0000"); keyCode(err) != proto.CodePINInvalid {
		t.Fatalf("wrong PIN: %v", err)
	}
	before := info(t, d)

	path := filepath.Join(t.TempDir(), "key.simkey")
	if err := k.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	loaded, err := simkey.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := open(t, loaded, simkey.TapHooks{})
	if after := info(t, d2); after != before || after.PINRetries != 7 {
		t.Fatalf("Info after Load = %+v, want %+v", after, before)
	}
	if _, err := d2.Auth(ctxT(t), secret(2)); !errors.Is(err, proto.ErrAuth) {
		t.Fatalf("wrong secret on the loaded key: %v", err)
	}
	s2, err := d2.Auth(ctxT(t), secret(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.VerifyPIN(ctx, "8642"); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.ReadCredential(ctx, 3); err != nil || got != cur {
		t.Fatalf("current = %v, %v", got, err)
	}
	if got, err := s2.ReadPending(ctx, 3); err != nil || got != pend {
		t.Fatalf("pending = %v, %v", got, err)
	}
}

func TestDirAndAutoSave(t *testing.T) {
	dir := t.TempDir()
	k, err := simkey.NewInDir(dir, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^SIM-[0-9A-F]{4}-[0-9A-F]{4}$`).MatchString(k.Serial()) {
		t.Fatalf("serial %q", k.Serial())
	}
	k2, err := simkey.NewInDir(dir, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600)
	paths, err := simkey.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, k.Serial()+".simkey"), filepath.Join(dir, k2.Serial()+".simkey")}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if len(paths) != 2 || paths[0] != want[0] || paths[1] != want[1] {
		t.Fatalf("List = %v, want %v", paths, want)
	}

	// every change is on disk at once
	d, _ := open(t, k, simkey.TapHooks{})
	if err := d.Link(ctxT(t), secret(5), nil); err != nil {
		t.Fatal(err)
	}
	s, err := d.Auth(ctxT(t), secret(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteCredential(ctxT(t), 1, proto.Credential{Login: "erin", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	again, err := simkey.Load(filepath.Join(dir, k.Serial()+".simkey"))
	if err != nil {
		t.Fatal(err)
	}
	dl, _ := open(t, again, simkey.TapHooks{})
	if i := info(t, dl); i.State != proto.StateLinked || i.FreeSlots != simkey.DefaultSlots-1 {
		t.Fatalf("autosaved state: %+v", i)
	}
	if _, err := simkey.List(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List of a missing dir: %v", err)
	}
}

// TestAutoSaveFailure: when the key cannot store a change, the command fails
// and the state is as before.
func TestAutoSaveFailure(t *testing.T) {
	k := simkey.New("SIM-NOSAVE")
	k.SetAutoSave(filepath.Join(t.TempDir(), "missing-dir", "k.simkey"))
	d, _ := open(t, k, simkey.TapHooks{})
	if err := d.Link(ctxT(t), secret(1), nil); keyCode(err) != proto.CodeOther {
		t.Fatalf("Link without storage: %v, want CodeOther", err)
	}
	if i := info(t, d); i.State != proto.StateBlank {
		t.Fatalf("state %s after a failed save", i.State)
	}
	good := filepath.Join(t.TempDir(), "k.simkey")
	k.SetAutoSave(good)
	if err := d.Link(ctxT(t), secret(1), nil); err != nil {
		t.Fatalf("Link with working autosave: %v", err)
	}
	s, err := d.Auth(ctxT(t), secret(1))
	if err != nil {
		t.Fatal(err)
	}
	k.SetAutoSave(filepath.Join(t.TempDir(), "missing-dir", "k.simkey"))
	if err := s.WriteCredential(ctxT(t), 0, proto.Credential{Login: "x", Password: "y"}); keyCode(err) != proto.CodeOther {
		t.Fatalf("WRITE without storage: %v, want CodeOther", err)
	}
	if _, err := s.ReadPending(ctxT(t), 0); keyCode(err) != proto.CodeNotFound {
		t.Fatalf("a WRITE that could not be stored is visible: %v", err)
	}
	if i := info(t, d); i.FreeSlots != simkey.DefaultSlots {
		t.Fatalf("free slots %d after a failed save", i.FreeSlots)
	}
}

func TestLoadRejects(t *testing.T) {
	const secretB64 = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=" // must never be echoed
	tests := []struct {
		name string
		file string
	}{
		{"not JSON", "master=" + secretB64},
		{"wrong version", `{"version":9,"serial":"S","model":"m","firmware":"f","state":"blank","pin_retries":8,"slots":[{}]}`},
		{"unknown state", `{"version":1,"serial":"S","model":"m","firmware":"f","state":"melted","pin_retries":8,"slots":[{}]}`},
		{"linked with a short secret", `{"version":1,"serial":"S","model":"m","firmware":"f","state":"linked","master":"` + secretB64 + `","pin_retries":8,"slots":[{}]}`},
		{"blank with a secret", `{"version":1,"serial":"S","model":"m","firmware":"f","state":"blank","master":"` + secretB64 + `","pin_retries":8,"slots":[{}]}`},
		{"no slots", `{"version":1,"serial":"S","model":"m","firmware":"f","state":"blank","pin_retries":8,"slots":[]}`},
		{"wrong type", `{"version":1,"serial":"S","model":"m","firmware":"f","state":"blank","pin_retries":"` + secretB64 + `","slots":[{}]}`},
		{"unknown field", `{"version":1,"serial":"S","` + secretB64 + `":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.simkey")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := simkey.Load(path)
			if err == nil {
				t.Fatal("Load accepted a bad file")
			}
			if strings.Contains(err.Error(), secretB64) || strings.Contains(err.Error(), "c2Vj") {
				t.Fatalf("error quotes the file's secret: %v", err)
			}
		})
	}
	if _, err := simkey.Load(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
}
