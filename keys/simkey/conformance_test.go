package simkey_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireEnv, set to 1 (as CI does), makes missing required test
// components a failure instead of a skip.
const requireEnv = "KEYDESK_REQUIRE_AD"

// conformanceScript drives the key through python-fido2.
const conformanceScript = "testdata/ctaphid_conformance.py"

// requirePythonFIDO2 returns a python3 that has the fido2 module: the first
// python3 on PATH, else the system's /usr/bin/python3 (where Debian's
// python3-fido2 installs it, also when PATH leads to another Python). Without
// one it skips the test saying why, or fails it when requireEnv is 1.
func requirePythonFIDO2(t *testing.T) string {
	t.Helper()
	var tried []string
	seen := map[string]bool{}
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		python, err := exec.LookPath(name)
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		if seen[python] {
			continue
		}
		seen[python] = true
		out, err := exec.Command(python, "-c", "import fido2.hid").CombinedOutput()
		if err == nil {
			return python
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		tried = append(tried, fmt.Sprintf("%s: %s", python, lines[len(lines)-1]))
	}
	const why = "python3-fido2 not installed: apt-get install python3-fido2"
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s); %s=1 requires this test to run", why, strings.Join(tried, "; "), requireEnv)
	}
	t.Skipf("%s (%s); set %s=1 to make this a failure", why, strings.Join(tried, "; "), requireEnv)
	return ""
}

// requiredChecks must each report "ok": a script that runs fewer checks,
// or skips one, fails the test.
var requiredChecks = []string{
	"init.allocate", "init.version", "init.capability-bits", "init.fresh-cid", "init.resync",
	"ping.0", "ping.1", "ping.57", "ping.58", "ping.59", "ping.116", "ping.117", "ping.118",
	"ping.500", "ping.7609", "ping.too-long", "ping.after-refused",
	"cmd.unknown.0x02", "cmd.unknown.0x05", "cmd.unknown.0x07", "cmd.unknown.0x09", "cmd.unknown.0x30",
	"channel.broadcast-refused", "channel.unallocated-refused", "vendor.info",
	"wink", "cbor", "msg", "lock", "lock.key-state",
	"cancel.idle", "cancel.unallocated", "cancel.broadcast",
	"bridge.clean-exit", "bridge.nothing-unasked", "bridge.key-effects",
	"slow.init.allocate", "slow.keepalive", "slow.cancel-own-request", "slow.busy-other-channel",
	"slow.cancel-other-channel",
	"slow.bridge.clean-exit", "slow.bridge.nothing-unasked", "slow.bridge.key-effects",
}

// TestCTAPHIDConformance runs python-fido2, an independent CTAPHID host
// stack, against a real simulated key behind the stdio bridge: channel
// allocation, PING of one and many packets, every standard command the INIT
// capability flags promise (and the ones they rule out), CTAPHID_LOCK and
// CANCEL, KEEPALIVE and the errors CTAP 2.1 defines.
func TestCTAPHIDConformance(t *testing.T) {
	python := requirePythonFIDO2(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary to run as the bridge: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, conformanceScript, self)
	cmd.Env = append(os.Environ(), bridgeEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()

	results := map[string]string{} // check name -> its line
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		status, rest, _ := strings.Cut(line, " ")
		name, _, _ := strings.Cut(strings.TrimSpace(rest), ":")
		switch status {
		case "ok", "FAIL", "skip":
			results[name] = line
		}
		if status == "FAIL" {
			t.Errorf("python-fido2: %s", line)
		}
	}
	if runErr != nil {
		t.Errorf("%s: %v\nstderr:\n%s", conformanceScript, runErr, stderr.String())
	}
	for _, name := range requiredChecks {
		line, ran := results[name]
		switch {
		case !ran:
			t.Errorf("check %s did not run", name)
		case !strings.HasPrefix(line, "ok "):
			t.Errorf("check %s did not pass: %s", name, line)
		}
	}
}
