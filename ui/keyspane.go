package ui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/internal/sanitize"
	keylife "keydesk/keys"
)

type (
	keysMsg struct {
		list []app.KeyView
		err  error
	}
	// keyOpMsg ends a key operation run in a command.
	keyOpMsg struct {
		what   string // "assign", "renew", "unlock", "activate", ...
		serial string
		code   app.IssuedCode
		res    app.ActivationResult
		err    error
	}
)

func (m Model) loadKeys() tea.Cmd {
	svc, ctx, actor := m.svc, m.ctx, m.opts.Actor
	return func() tea.Msg {
		l, err := svc.Keys(ctx, actor)
		return keysMsg{list: l, err: err}
	}
}

func (m *Model) selectedKey() *app.KeyView {
	if len(m.keysList) == 0 {
		return nil
	}
	m.keyCursor.clamp(len(m.keysList), max(1, m.layout().keyRows))
	return &m.keysList[m.keyCursor.cursor]
}

func (m *Model) keyOp(what, serial string, fn func() (app.IssuedCode, error)) tea.Cmd {
	return func() tea.Msg {
		code, err := fn()
		return keyOpMsg{what: what, serial: serial, code: code, err: err}
	}
}

// handleKeysPaneKey runs the Keys pane's actions; ok is false when the key
// is not one of them.
func (m Model) handleKeysPaneKey(msg tea.KeyMsg) (Model, tea.Cmd, bool) {
	k := m.keys
	svc, ctx, actor := m.svc, m.ctx, m.opts.Actor
	if key.Matches(msg, k.SimNew) && svc != nil && svc.HasSimulatedKeys() {
		return m, func() tea.Msg {
			serial, err := svc.NewSimulatedKey(ctx, actor)
			return keyOpMsg{what: "new simulated key", serial: serial, err: err}
		}, true
	}
	sel := m.selectedKey()
	if sel == nil {
		if key.Matches(msg, k.KeyAssign, k.KeyRenew, k.KeyActivate, k.KeySuspend, k.KeyUnlock, k.KeyWithdraw, k.KeyCompromise, k.SimPlug) {
			m.say("no keys yet: plug one in, or add serials with keydesk keys add")
			return m, nil, true
		}
		return m, nil, false
	}
	serial := sel.Serial
	shown := sanitize.Text(serial)
	switch {
	case key.Matches(msg, k.SimPlug) && svc != nil && svc.HasSimulatedKeys():
		in := !sel.PluggedIn
		return m, func() tea.Msg {
			what := "unplugged"
			if in {
				what = "plugged in"
			}
			return keyOpMsg{what: what, serial: serial, err: svc.SetSimulatedKeyPlugged(ctx, actor, serial, in)}
		}, true
	case key.Matches(msg, k.KeyAssign):
		r := m.selectedRow()
		if r == nil {
			m.say("select an employee in Employees first, then assign the key here")
			return m, nil, true
		}
		who, ref := r.name, fmt.Sprint(r.id)
		m.dialog = confirmDialog(fmt.Sprintf("Assign key %s to %s?", shown, who),
			"The key becomes Reserved and a one-time activation code is shown once; the employee activates the key with it on site.", false,
			func(m *Model) tea.Cmd {
				return m.keyOp("assign", serial, func() (app.IssuedCode, error) { return svc.AssignKey(ctx, actor, serial, ref) })
			})
		return m, nil, true
	case key.Matches(msg, k.KeyRenew):
		m.dialog = confirmDialog(fmt.Sprintf("New activation code for key %s?", shown), "The old code stops working.", false,
			func(m *Model) tea.Cmd {
				return m.keyOp("renew", serial, func() (app.IssuedCode, error) { return svc.RenewCode(ctx, actor, serial) })
			})
		return m, nil, true
	case key.Matches(msg, k.KeyActivate):
		return m.activationDialog(serial)
	case key.Matches(msg, k.KeySuspend):
		m.dialog = confirmDialog(fmt.Sprintf("Suspend key %s?", shown), "The key stops working until an admin unlocks it; then it is activated again with a new code.", true,
			func(m *Model) tea.Cmd {
				return m.keyOp("suspend", serial, func() (app.IssuedCode, error) { return app.IssuedCode{}, svc.SuspendKey(ctx, actor, serial, "") })
			})
		return m, nil, true
	case key.Matches(msg, k.KeyUnlock):
		m.dialog = confirmDialog(fmt.Sprintf("Unlock key %s?", shown), "The key returns to Reserved for its employee with a new activation code.", false,
			func(m *Model) tea.Cmd {
				return m.keyOp("unlock", serial, func() (app.IssuedCode, error) { return svc.UnlockKey(ctx, actor, serial, "") })
			})
		return m, nil, true
	case key.Matches(msg, k.KeyWithdraw):
		m.dialog = confirmDialog(fmt.Sprintf("Withdraw key %s?", shown), "The key is taken from its employee (Deactivated). Plugged in again, it is wiped and returns to Ready.", true,
			func(m *Model) tea.Cmd {
				return m.keyOp("withdraw", serial, func() (app.IssuedCode, error) { return app.IssuedCode{}, svc.WithdrawKey(ctx, actor, serial, "") })
			})
		return m, nil, true
	case key.Matches(msg, k.KeyCompromise):
		pick := func(reason keylife.Reason) func(m *Model) tea.Cmd {
			return func(m *Model) tea.Cmd {
				d, cmd := m.inputDialog(fmt.Sprintf("Mark key %s %s? This is final.", shown, reason),
					"Type the key's serial to confirm.", serial, false,
					func(v string) (bool, string) {
						if v != serial {
							return false, "that is not this key's serial"
						}
						return true, ""
					},
					func(m *Model, _ string) tea.Cmd {
						return m.keyOp("compromise", serial, func() (app.IssuedCode, error) {
							return app.IssuedCode{}, svc.CompromiseKey(ctx, actor, serial, reason, "")
						})
					})
				d.danger = true
				m.dialog = d
				return cmd
			}
		}
		m.dialog = &dialog{kind: dialogChoice, danger: true, title: fmt.Sprintf("Key %s is…", shown),
			body:    "A compromised key is never used again.",
			choices: []choice{{"l", "lost", pick(keylife.ReasonLost)}, {"s", "stolen", pick(keylife.ReasonStolen)}, {"b", "broken", pick(keylife.ReasonBroken)}}}
		return m, nil, true
	}
	return m, nil, false
}

// activationDialog asks for the activation code of a plugged-in key.
func (m Model) activationDialog(serial string) (Model, tea.Cmd, bool) {
	var sel *app.KeyView
	for i := range m.keysList {
		if m.keysList[i].Serial == serial {
			sel = &m.keysList[i]
		}
	}
	shown := sanitize.Text(serial)
	switch {
	case sel == nil:
		return m, nil, true
	case sel.Status != string(keylife.StatusReserved):
		m.say("key %s is %s: only a reserved key is activated", shown, sel.Status)
		return m, nil, true
	case !sel.PluggedIn:
		m.say("plug key %s in to activate it", shown)
		return m, nil, true
	}
	svc, ctx, actor := m.svc, m.ctx, m.opts.Actor
	owner := sanitize.Text(sel.Owner)
	d, cmd := m.inputDialog(fmt.Sprintf("Activate key %s for %s", shown, owner),
		"Enter the 6-digit activation code the admin gave you. Three wrong codes lock the key.", "123 456", true,
		func(v string) (bool, string) {
			if _, err := keylife.ParseCode(v); err != nil {
				return false, "the code is 6 digits, e.g. 482 913"
			}
			return true, ""
		},
		func(m *Model, v string) tea.Cmd {
			m.say("activating key %s…", shown)
			return func() tea.Msg {
				res, err := svc.ActivateKey(ctx, actor, serial, v)
				return keyOpMsg{what: "activate", serial: serial, res: res, err: err}
			}
		})
	m.dialog = d
	return m, cmd, true
}

// keyOpDone shows how a key operation ended: a code dialog when a code was
// issued, otherwise a message.
func (m Model) keyOpDone(msg keyOpMsg) (Model, tea.Cmd) {
	shown := sanitize.Text(msg.serial)
	switch {
	case msg.err != nil && msg.what == "activate" && errors.Is(msg.err, app.ErrWrongCode):
		m.say("wrong code for key %s: %d attempts left", shown, msg.res.Left)
		next, cmd, _ := m.activationDialog(msg.serial)
		return next, tea.Batch(cmd, m.loadKeys())
	case msg.err != nil:
		m.say("%s %s: %v", msg.what, shown, firstLine(msg.err.Error()))
	case !msg.code.IsZero():
		m.dialog = &dialog{kind: dialogCode, title: fmt.Sprintf("Activation code for key %s", shown),
			body: "Give it to the employee; it is shown only now. They plug the key in and enter it.", code: msg.code.String()}
	case msg.what == "activate":
		m.say("key %s is active", shown)
	case msg.what == "new simulated key":
		m.say("simulated key %s plugged in", shown)
	default:
		m.say("key %s: %s", shown, msg.what)
	}
	return m, m.loadKeys()
}

// keyLines draws the Keys pane.
func (m Model) keyLines(cw, rows int) []string {
	serialW, statusW := min(16, cw/3), min(24, max(10, cw/3))
	seenW := 0
	if cw >= 60 {
		seenW = 9 // "12m ago"
	}
	ownerW := cw - 2 - serialW - statusW - 7 - seenW
	col := func(mark, serial, status, owner, seen, plugged string) string {
		line := mark + fit(serial, serialW) + " " + fit(status, statusW) + " " + fit(owner, max(1, ownerW)) + " "
		if seenW > 0 {
			line += fit(seen, seenW-1) + " "
		}
		return line + fit(plugged, 4)
	}
	lines := []string{m.styles.Label.Render(col("  ", "SERIAL", "STATUS", "OWNER", "SEEN", "IN"))}
	if len(m.keysList) == 0 {
		hint := "no keys: plug one in"
		if m.svc != nil && m.svc.HasSimulatedKeys() {
			hint += " (n: new simulated key)"
		}
		return append(lines, m.styles.Dim.Render(hint))
	}
	m.keyCursor.clamp(len(m.keysList), rows)
	for i := m.keyCursor.offset; i < len(m.keysList) && len(lines) <= rows; i++ {
		kv := m.keysList[i]
		mark := "  "
		if i == m.keyCursor.cursor {
			mark = "› "
		}
		status := kv.Status
		if kv.Reason != "" {
			status += " (" + kv.Reason + ")"
		}
		owner := kv.Owner
		if owner == "" {
			owner = "-"
		}
		plugged, seen := "", "-"
		if kv.PluggedIn {
			plugged = "yes"
		}
		if kv.LastSeen != nil {
			seen = relTime(*kv.LastSeen, m.opts.Now())
		}
		line := col(mark, sanitize.Text(kv.Serial), status, sanitize.Text(owner), seen, plugged)
		switch {
		case i == m.keyCursor.cursor && m.focus == PaneKeys:
			line = m.styles.Selected.Render(line)
		case kv.Status == string(keylife.StatusCompromised) || kv.Status == string(keylife.StatusDeactivated):
			line = m.styles.Dim.Render(line)
		}
		lines = append(lines, line)
	}
	return lines
}

// keyDetailLines describes the selected key.
func (m Model) keyDetailLines() []string {
	kv := m.selectedKeyValue()
	if kv == nil {
		return []string{m.styles.Dim.Render("select a key")}
	}
	lab := m.styles.Label
	row := func(label, value string) string { return lab.Render(fmt.Sprintf("%-9s", label)) + " " + value }
	status := kv.Status
	if kv.Reason != "" {
		status += " (" + kv.Reason + ")"
	}
	out := []string{row("Serial", sanitize.Text(kv.Serial)), row("Status", status)}
	if kv.Owner != "" {
		out = append(out, row("Owner", sanitize.Text(kv.Owner)+" "+sanitize.Text(kv.OwnerEmail)))
	}
	if kv.Model != "" {
		out = append(out, row("Model", sanitize.Text(kv.Model)+" "+sanitize.Text(kv.Firmware)))
	}
	plugged := "no"
	if kv.PluggedIn {
		plugged = "yes"
	}
	out = append(out, row("Plugged", plugged))
	if kv.LastSeen != nil {
		out = append(out, row("Seen", relTime(*kv.LastSeen, m.opts.Now())))
	}
	if kv.CodeExpiresAt != nil {
		out = append(out, row("Code", fmt.Sprintf("expires %s, %d wrong attempts", relTime(*kv.CodeExpiresAt, m.opts.Now()), kv.CodeAttempts)))
	}
	out = append(out, row("Changed", relTime(kv.StatusChangedAt, m.opts.Now())))
	var acts []string
	for _, a := range keylife.Allowed(keylife.Status(kv.Status)) {
		acts = append(acts, string(a))
	}
	if len(acts) == 0 {
		acts = []string{"none (final)"}
	}
	out = append(out, "", m.styles.Dim.Render("allowed: "+strings.Join(acts, ", ")))
	return out
}

func (m Model) selectedKeyValue() *app.KeyView {
	if len(m.keysList) == 0 {
		return nil
	}
	i := min(max(0, m.keyCursor.cursor), len(m.keysList)-1)
	return &m.keysList[i]
}
