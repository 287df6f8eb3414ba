package ui

import (
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/internal/sanitize"
	"keydesk/store"
)

// activityLimit is how many audit entries the Activity pane keeps.
const activityLimit = 500

type activityMsg struct {
	entries []store.AuditEntry
	err     error
}

// activityPane is the audit log, newest first, following new entries live.
type activityPane struct {
	c             *Common
	width, height int
	focused       bool
	entries       []store.AuditEntry
	lastSeq       int64
	offset        int
	loader        loader
}

const paneActivity = "Activity"

func newActivityPane(c *Common) *activityPane { return &activityPane{c: c} }

func (p *activityPane) Title() string     { return paneActivity }
func (p *activityPane) Init() tea.Cmd     { return p.reload() }
func (p *activityPane) Rows() int         { return len(p.entries) }
func (p *activityPane) Actions() []Action { return nil }
func (p *activityPane) SetFocused(f bool) { p.focused = f }
func (p *activityPane) SetSize(w, h int)  { p.width, p.height = w, h }

// reload reads the entries newer than those shown.
func (p *activityPane) reload() tea.Cmd { return p.loader.start(p.load) }

// load reads the entries after the newest shown (all, up to the limit, at
// first).
func (p *activityPane) load() tea.Cmd {
	svc, ctx, actor, after := p.c.Svc, p.c.Ctx, p.c.Actor, p.lastSeq
	return func() tea.Msg {
		var es []store.AuditEntry
		err := svc.AuditEntries(ctx, actor, store.AuditFilter{AfterSeq: after, Limit: activityLimit, Newest: true}, func(e store.AuditEntry) error {
			es = append(es, e)
			return nil
		})
		return activityMsg{entries: es, err: err}
	}
}

func (p *activityPane) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case activityMsg:
		again := p.loader.done(p.load)
		if msg.err != nil {
			return tea.Batch(again, notify("loading activity failed: %v", msg.err))
		}
		var fresh []store.AuditEntry
		for _, e := range msg.entries {
			if e.Seq > p.lastSeq { // an entry is shown once, whatever the loads
				fresh = append(fresh, e)
			}
		}
		p.entries = append(fresh, p.entries...)
		if len(p.entries) > activityLimit {
			p.entries = p.entries[:activityLimit]
		}
		if len(p.entries) > 0 {
			p.lastSeq = p.entries[0].Seq
		}
		return again
	case eventMsg:
		switch e := msg.e.(type) {
		case app.DataChanged:
			if e.What.Has(app.ChangedAudit) {
				return p.reload()
			}
		case app.EventsLost:
			return p.reload()
		}
	case tea.KeyMsg:
		if d, ok := p.c.Keys.movement(msg, p.height); ok {
			p.offset = scroll(p.offset, d, len(p.entries), p.height)
		}
	case scrollMsg:
		p.offset = scroll(p.offset, msg.delta, len(p.entries), p.height)
	}
	return nil
}

func (p *activityPane) View() string {
	if len(p.entries) == 0 {
		return block([]string{p.c.Styles.Dim.Render("no activity yet")}, p.width, p.height)
	}
	var out []string
	for i := p.offset; i < len(p.entries) && len(out) < p.height; i++ {
		out = append(out, p.line(p.entries[i]))
	}
	return block(out, p.width, p.height)
}

func (p *activityPane) line(e store.AuditEntry) string {
	st := p.c.Styles
	at := e.At.In(p.c.Location)
	ts := at.Format("15:04:05")
	if p.c.Now().Sub(e.At) > 24*time.Hour {
		ts = at.Format("01-02 15:04")
	}
	var outcome string
	switch e.Outcome {
	case store.OutcomeSuccess:
		outcome = st.OK.Render("✓")
	case store.OutcomeDenied:
		outcome = st.Err.Render("denied")
	default:
		outcome = st.Err.Render("✗")
	}
	detail := ""
	if e.Action == "sync" && e.Outcome == store.OutcomeSuccess {
		detail = fmt.Sprintf(" +%v ~%v -%v", e.Details["added"], e.Details["updated"], e.Details["removed"])
		if h, ok := e.Details["held"].(float64); ok && h > 0 {
			detail += fmt.Sprintf(" held %v", h)
		}
	} else if msg, ok := e.Details["error"].(string); ok {
		detail = " " + firstLine(msg)
	}
	return sanitize.Text(fmt.Sprintf("%s %s %s %s", ts, e.Actor, e.Action, e.Target)) + " " + outcome + sanitize.Text(detail)
}
