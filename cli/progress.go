package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"golang.org/x/term"

	"keydesk/internal/sanitize"
	"keydesk/ldapsync"
)

// syncProgress draws one line on a terminal's standard error while a sync
// runs: each domain's phase and what it has read, redrawn at most ten
// times a second, and erased at the end. Nothing is drawn when standard
// error is not a terminal.
type syncProgress struct {
	mu      sync.Mutex
	w       io.Writer
	domains map[string]ldapsync.Progress
	last    time.Time
	width   int
	drawn   bool
	spin    int
}

// newSyncProgress is a progress line for w, or nil when w is not a
// terminal.
func newSyncProgress(w io.Writer) *syncProgress {
	f, ok := w.(*os.File)
	if !ok || !isatty.IsTerminal(f.Fd()) {
		return nil
	}
	width := 80
	if c, _, err := term.GetSize(int(f.Fd())); err == nil && c > 10 {
		width = c
	}
	return &syncProgress{w: w, domains: map[string]ldapsync.Progress{}, width: width}
}

// update records a domain's progress and redraws, at most every 100 ms.
func (p *syncProgress) update(domain string, pr ldapsync.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.domains[domain] = pr
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.spin++
		fmt.Fprint(p.w, "\r\x1b[K"+progressLine(p.domains, p.spin, p.width))
		p.drawn = true
	}
}

// done erases the line.
func (p *syncProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// progressLine is the line for the domains' progress, at most width
// columns: "⠙ syncing corp: membership, 3 pages, 1,500 entries · branch: ...".
func progressLine(domains map[string]ldapsync.Progress, spin, width int) string {
	names := make([]string, 0, len(domains))
	for d := range domains {
		names = append(names, d)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, d := range names {
		pr := domains[d]
		parts = append(parts, fmt.Sprintf("%s: %s, %s, %s", sanitize.Text(d), pr.Phase, plural(pr.Pages, "page"), plural(pr.Entries, "entry")))
	}
	line := spinner[spin%len(spinner)] + " syncing " + strings.Join(parts, " · ")
	if r := []rune(line); len(r) > width-1 {
		line = string(r[:width-2]) + "…"
	}
	return line
}
