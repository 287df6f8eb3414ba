package cli

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestTheSystemdUnitIsHardened: the unit in contrib runs keydesk serve as
// its own user, with its state in /var/lib/keydesk, hardened; and
// systemd-analyze finds nothing wrong with it but the binary it cannot
// find here.
func TestTheSystemdUnitIsHardened(t *testing.T) {
	b, err := os.ReadFile("../contrib/keydesk.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"\nUser=keydesk\n", "\nStateDirectory=keydesk\n", "\nProtectSystem=strict\n", "\nNoNewPrivileges=yes\n",
		"\nCapabilityBoundingSet=\n", "\nUMask=0077\n", "--data /var/lib/keydesk serve\n", "\nKillSignal=SIGTERM\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("contrib/keydesk.service lacks %q", strings.TrimSpace(want))
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	out, _ := exec.Command("systemd-analyze", "verify", "../contrib/keydesk.service").CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !strings.Contains(line, "/usr/local/bin/keydesk is not executable") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}
