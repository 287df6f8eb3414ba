package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEmployeesFilter: --filter takes the console's query (words in any
// order, accents ignored, field filters); a field it does not know is a
// wrong command line (exit 2, with the fields it knows), even before there
// is a database.
func TestEmployeesFilter(t *testing.T) {
	isolate(t)
	code, _, errOut := runCLI(t, "employees", "--filter", "colour:red")
	if code != exitUsage || !strings.Contains(errOut, `unknown field "colour"`) || !strings.Contains(errOut, "domain, flag, key, status, rotation") {
		t.Errorf("an unknown field before any database: exit %d, %q; want exit 2 naming the fields", code, errOut)
	}
	for _, p := range [][2]string{{"anna.lopez@example.com", "Anna López"}, {"ayse@example.com", "Ahmed, Ayşe"}, {"anna.smith@example.com", "Anna Smith"}} {
		if code, out, errOut := runCLI(t, "employees", "add", "--email", p[0], "--name", p[1]); code != 0 {
			t.Fatalf("add %s: %d %s %s", p[1], code, out, errOut)
		}
	}
	if code, out, errOut := runCLI(t, "employees", "remove", "anna.smith@example.com"); code != 0 {
		t.Fatalf("remove: %d %s %s", code, out, errOut)
	}
	for _, tt := range []struct {
		filter   string
		want     []string
		wantNone []string
	}{
		{"lopez anna", []string{"Anna López", "1 employee"}, []string{"Anna Smith", "Ayşe"}},
		{"anna lopez", []string{"Anna López"}, []string{"Anna Smith"}},
		{"ahmed ayse", []string{"Ahmed, Ayşe", "1 employee"}, []string{"Anna"}},
		{"status:removed", []string{"Anna Smith", "1 employee"}, []string{"López", "Ayşe"}},
		{"anna key:none status:active", []string{"Anna López", "1 employee"}, []string{"Anna Smith"}},
		{"nobody", []string{"0 employees"}, []string{"Anna"}},
	} {
		code, out, errOut := runCLI(t, "employees", "--filter", tt.filter)
		if code != 0 {
			t.Errorf("--filter %q: exit %d, %s", tt.filter, code, errOut)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("--filter %q does not list %q:\n%s", tt.filter, w, out)
			}
		}
		for _, w := range tt.wantNone {
			if strings.Contains(out, w) {
				t.Errorf("--filter %q lists %q:\n%s", tt.filter, w, out)
			}
		}
	}
	code, out, errOut := runCLI(t, "employees", "--json", "--filter", "lopez anna")
	var emps []map[string]any
	if err := json.Unmarshal([]byte(out), &emps); code != 0 || err != nil || len(emps) != 1 || emps[0]["display_name"] != "Anna López" {
		t.Errorf("--json --filter: exit %d, %q %s (%v)", code, out, errOut, err)
	}
	code, out, errOut = runCLI(t, "employees", "--filter", "anna key:lost")
	if code != exitUsage || out != "" || !strings.Contains(errOut, `unknown value "lost"`) || !strings.Contains(errOut, "usage: keydesk employees") {
		t.Errorf("an unknown key status: exit %d, stdout %q, stderr %q; want exit 2 and the values", code, out, errOut)
	}
}
