package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func testMasterKey(b byte) MasterKey {
	var k MasterKey
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || len(b) != 32 {
		t.Fatalf("secret lengths %d, %d; want 32", len(a), len(b))
	}
	if bytes.Equal(a, b) {
		t.Error("two secrets are equal")
	}
}

func TestSealOpen(t *testing.T) {
	k := testMasterKey(1)
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	binding := SecretBinding(7, "SN-0007")
	sealed, err := k.Seal(secret, binding)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 1+24+32+16 {
		t.Errorf("sealed length %d, want version + nonce + secret + tag = %d", len(sealed), 1+24+32+16)
	}
	if bytes.Contains(sealed, secret) || bytes.Contains(sealed, secret[:8]) {
		t.Error("the sealed form contains the secret")
	}
	again, err := k.Seal(secret, binding)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sealed[1:25], again[1:25]) || bytes.Equal(sealed, again) {
		t.Error("two seals share a nonce")
	}
	got, err := k.Open(sealed, binding)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open after Seal: error %v, round trip equal = %v", err, bytes.Equal(got, secret))
	}

	tests := []struct {
		name    string
		key     MasterKey
		sealed  []byte
		binding string
		wantErr error
	}{
		{"wrong binding: other row", k, sealed, SecretBinding(8, "SN-0007"), ErrOpen},
		{"wrong binding: other serial", k, sealed, SecretBinding(7, "SN-0008"), ErrOpen},
		{"wrong binding: empty", k, sealed, "", ErrOpen},
		{"wrong key", testMasterKey(2), sealed, binding, ErrOpen},
		{"zero key", MasterKey{}, sealed, binding, ErrNoMasterKey},
		{"truncated", k, sealed[:40], binding, nil},
		{"empty", k, nil, binding, nil},
	}
	for _, tt := range tests {
		_, err := tt.key.Open(tt.sealed, tt.binding)
		if err == nil {
			t.Errorf("%s: Open succeeded", tt.name)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
		}
		checkNoSecret(t, err.Error(), secret, k)
	}
	// Every single changed byte is noticed.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := k.Open(bad, binding); err == nil {
			t.Fatalf("Open accepted a ciphertext with byte %d changed", i)
		}
	}
}

func TestSealRefuses(t *testing.T) {
	k := testMasterKey(1)
	if _, err := (MasterKey{}).Seal([]byte("x"), "b"); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("zero key Seal error = %v, want ErrNoMasterKey", err)
	}
	if _, err := k.Seal(nil, "b"); err == nil {
		t.Error("Seal of an empty secret succeeded")
	}
	if _, err := k.Seal([]byte("x"), ""); err == nil {
		t.Error("Seal with no binding succeeded")
	}
}

func checkNoSecret(t *testing.T, text string, secret []byte, k MasterKey) {
	t.Helper()
	for _, s := range []string{hex.EncodeToString(secret), hex.EncodeToString(k[:]), fmt.Sprint(secret), fmt.Sprint(k[:])} {
		if strings.Contains(text, s) {
			t.Errorf("text contains a secret in plain form")
		}
	}
}

func TestSecretBinding(t *testing.T) {
	if got := SecretBinding(42, "YK-1234"); got != "key:YK-1234:42" {
		t.Errorf("SecretBinding = %q", got)
	}
	if SecretBinding(1, "a:2") == SecretBinding(12, "a") {
		t.Error("bindings of different keys collide")
	}
}

func TestDerive(t *testing.T) {
	k1, k2 := testMasterKey(1), testMasterKey(2)
	pepper := k1.Derive(PurposeCodePepper)
	seal := k1.Derive(PurposeSecretSeal)
	if len(pepper) != 32 || len(seal) != 32 {
		t.Fatalf("sub-key lengths %d, %d; want 32", len(pepper), len(seal))
	}
	if !bytes.Equal(pepper, k1.Derive(PurposeCodePepper)) {
		t.Error("Derive is not deterministic")
	}
	if bytes.Equal(pepper, seal) {
		t.Error("two purposes give the same sub-key")
	}
	if bytes.Equal(pepper, k2.Derive(PurposeCodePepper)) {
		t.Error("two master keys give the same sub-key")
	}
	if bytes.Equal(pepper, k1[:]) || bytes.Equal(seal, k1[:]) {
		t.Error("a sub-key is the raw master key")
	}
	// A code hashed under one master key's pepper does not verify under
	// another's.
	c, _ := ParseCode("123456")
	h, err := HashCode(c, pepper, "key")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Verify(c, k1.Derive(PurposeCodePepper), "key") || h.Verify(c, k2.Derive(PurposeCodePepper), "key") {
		t.Error("code hash does not follow the master key")
	}
}

func TestMasterKeyNeverPrints(t *testing.T) {
	k := testMasterKey(0xA0)
	var logged bytes.Buffer
	opts := &slog.HandlerOptions{ReplaceAttr: noTime}
	slog.New(slog.NewTextHandler(&logged, opts)).Info("loaded", "key", k)
	slog.New(slog.NewJSONHandler(&logged, opts)).Info("loaded", "key", k)
	out := fmt.Sprintf("%v %+v %#v %s %x %X %d %q", k, k, k, k, k, k, k, k) +
		fmt.Sprintf("%v %x", &k, &k) + fmt.Sprint(k) + logged.String()
	if !strings.Contains(out, "redacted") {
		t.Error("no redaction marker in the output")
	}
	for _, s := range []string{hex.EncodeToString(k[:4]), strings.ToUpper(hex.EncodeToString(k[:4])), "160 161 162", "a0a1"} {
		if strings.Contains(out, s) {
			t.Errorf("formatted master key shows its bytes")
		}
	}
}

func writeKeyFile(t *testing.T, path string, content []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, content, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
}

func noEnv(string) string { return "" }

func TestLoadOrCreateMasterKeyCreatesAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrCreateMasterKey(dir, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if k1 == (MasterKey{}) {
		t.Fatal("created key is all zeros")
	}
	path := filepath.Join(dir, MasterKeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master key file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm()&0o077 != 0 {
		t.Errorf("data directory: %v, mode %v; want it private", err, di.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 65 || b[64] != '\n' || hex.EncodeToString(k1[:])+"\n" != string(b) {
		t.Errorf("file does not hold the key as 64 hex digits and a newline (%d bytes)", len(b))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only %s (temporary file left?)", len(entries), MasterKeyFileName)
	}
	k2, err := LoadOrCreateMasterKey(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 {
		t.Error("second load gave another key")
	}
}

func TestLoadOrCreateMasterKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	got := make([]MasterKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = LoadOrCreateMasterKey(dir, noEnv)
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("load %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("concurrent loads gave different keys")
		}
	}
}

func TestLoadOrCreateMasterKeyRefuses(t *testing.T) {
	good := []byte(hex.EncodeToString(bytes.Repeat([]byte{0x5a}, 32)) + "\n")
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		wantErr error
		want    []string // parts of the message; "{path}" is the file
	}{
		{"readable by others", good, 0o644, ErrInsecureFile, []string{"{path}", "0644", "chmod 600 {path}"}},
		{"readable by group", good, 0o640, ErrInsecureFile, []string{"{path}", "chmod 600 {path}"}},
		{"writable by others", good, 0o602, ErrInsecureFile, []string{"chmod 600 {path}"}},
		{"too short", good[:62], 0o600, ErrMasterKeyFormat, []string{"{path}", "64 hex digits", "62 bytes"}},
		{"too long", append(bytes.Repeat([]byte("ab"), 33), '\n'), 0o600, ErrMasterKeyFormat, []string{"{path}", "67 bytes"}},
		{"raw 32 bytes", bytes.Repeat([]byte{0x5a}, 32), 0o600, ErrMasterKeyFormat, []string{"64 hex digits"}},
		{"empty", nil, 0o600, ErrMasterKeyFormat, []string{"0 bytes"}},
		{"not hex", append(bytes.Repeat([]byte("zz"), 32), '\n'), 0o600, ErrMasterKeyFormat, []string{"not a hex digit"}},
		{"two newlines", append(bytes.Clone(good), '\n'), 0o600, ErrMasterKeyFormat, []string{"66 bytes"}},
		{"all zeros", []byte(strings.Repeat("0", 64)), 0o600, ErrMasterKeyFormat, []string{"all zeros"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, MasterKeyFileName)
			writeKeyFile(t, path, tt.content, tt.mode)
			_, err := LoadOrCreateMasterKey(dir, noEnv)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "{path}", path)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), strings.TrimSpace(string(good))) {
				t.Error("error shows the key")
			}
			// The file is left alone.
			if b, _ := os.ReadFile(path); !bytes.Equal(b, tt.content) {
				t.Error("the refused file was changed")
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, MasterKeyFileName), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateMasterKey(dir, noEnv); !errors.Is(err, ErrMasterKeyFormat) {
			t.Errorf("error = %v, want ErrMasterKeyFormat", err)
		}
	})
	t.Run("accepts CRLF and no newline", func(t *testing.T) {
		for _, content := range [][]byte{good[:64], append(bytes.Clone(good[:64]), '\r', '\n')} {
			dir := t.TempDir()
			writeKeyFile(t, filepath.Join(dir, MasterKeyFileName), content, 0o600)
			k, err := LoadOrCreateMasterKey(dir, noEnv)
			if err != nil || k[0] != 0x5a || k[31] != 0x5a {
				t.Errorf("load of a valid file (%d bytes): %v", len(content), err)
			}
		}
	})
	t.Run("no data directory", func(t *testing.T) {
		if _, err := LoadOrCreateMasterKey("", noEnv); err == nil {
			t.Error("LoadOrCreateMasterKey with no directory succeeded")
		}
	})
}

func TestLoadOrCreateMasterKeyEnv(t *testing.T) {
	dataDir := t.TempDir()
	other := filepath.Join(t.TempDir(), "elsewhere.key")
	want := testMasterKey(0x30)
	writeKeyFile(t, other, []byte(hex.EncodeToString(want[:])+"\n"), 0o400)
	env := func(name string) string {
		if name == EnvMasterKeyFile {
			return other
		}
		return ""
	}
	k, err := LoadOrCreateMasterKey(dataDir, env)
	if err != nil {
		t.Fatal(err)
	}
	if k != want {
		t.Error("the file named by the environment was not used")
	}
	if _, err := os.Stat(filepath.Join(dataDir, MasterKeyFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("default key file created although the environment names one: %v", err)
	}

	// A file named by the environment is never created.
	missing := filepath.Join(t.TempDir(), "missing.key")
	_, err = LoadOrCreateMasterKey(dataDir, func(string) string { return missing })
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), EnvMasterKeyFile) {
		t.Errorf("missing env file: error = %v, want not-exist naming the file and the variable", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the missing file named by the environment was created")
	}

	// The environment's file is checked like the default one.
	if err := os.Chmod(other, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateMasterKey(dataDir, env); !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "chmod 600 "+other) {
		t.Errorf("loose env file: error = %v, want ErrInsecureFile with the chmod", err)
	}
}

func TestFingerprint(t *testing.T) {
	k1, k2, again := testMasterKey(1), testMasterKey(2), testMasterKey(1)
	if k1.Fingerprint() != again.Fingerprint() || k1.Fingerprint() == k2.Fingerprint() || len(k1.Fingerprint()) != 32 {
		t.Errorf("fingerprints %q %q: want 32 hex digits, stable, different for different keys", k1.Fingerprint(), k2.Fingerprint())
	}
	if strings.Contains(k1.Fingerprint(), hex.EncodeToString(k1[:4])) {
		t.Error("the fingerprint shows the key")
	}
}

func TestWriteMasterKeyFileNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "master.key")
	k1, k2 := testMasterKey(1), testMasterKey(2)
	if err := WriteMasterKeyFile(path, k1); err != nil {
		t.Fatal(err)
	}
	if err := WriteMasterKeyFile(path, k2); !errors.Is(err, fs.ErrExist) {
		t.Errorf("writing over an existing key file: %v, want fs.ErrExist", err)
	}
	if got, err := ReadMasterKey(path); err != nil || got != k1 {
		t.Errorf("the first key was replaced (%v)", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}
