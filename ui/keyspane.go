package ui

import (
	"time"

	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

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
		what   string // "assign", "renew", "unlock", ...
		serial string
		code   app.IssuedCode
		err    error
		// shown: the failure was shown in the dialog that ran the
		// operation (the pane only reloads).
		shown bool
	}
)

// A key operation is the outcome a waiting dialog waits for.
func (m keyOpMsg) failure() error    { return m.err }
func (m keyOpMsg) reported() tea.Msg { m.shown = true; return m }

const paneKeys = "Keys"

// seenWords is when a key was last seen: "now" while it is plugged in.
func seenWords(kv app.KeyView, now time.Time) string {
	switch {
	case kv.PluggedIn:
		return "now"
	case kv.LastSeen != nil:
		return timeWords(*kv.LastSeen, now)
	}
	return "-"
}

// keysPane is the key inventory: serial, status, owner, last seen, plugged
// in; its actions follow the key lifecycle.
type keysPane struct {
	c             *Common
	width, height int
	focused       bool
	keys          []app.KeyView
	list          list
	loader        loader
	actions       []Action
}

func newKeysPane(c *Common) *keysPane {
	p := &keysPane{c: c}
	// lifecycle is an action that the key lifecycle (keys.Allowed, the
	// table) must allow from the selected key's status.
	lifecycle := func(a keylife.Action) func() (bool, string) {
		return func() (bool, string) {
			k := p.current()
			if k == nil {
				return false, "no key selected"
			}
			if !slices.Contains(keylife.Allowed(keylife.Status(k.Status)), a) {
				return false, "not for " + aKey(k.Status)
			}
			return true, ""
		}
	}
	// confirm asks, then runs the operation in the dialog, which says why
	// when the operation is refused (the key changed meanwhile). The
	// lifecycle's actions confirm this way rather than with Action.Confirm,
	// whose question closes as soon as it is answered.
	confirm := func(danger bool, ask func() (string, string), run func() tea.Cmd) func() tea.Cmd {
		return func() tea.Cmd {
			title, body := ask()
			return openDialog(newWaitingConfirm(p.c, title, body, danger, run()))
		}
	}
	simulated := func() (bool, string) {
		return p.c.Svc != nil && p.c.Svc.HasSimulatedKeys(), "no simulated keys here"
	}
	// op runs an operation on the selected key in a command.
	op := func(what string, fn func(serial string) (app.IssuedCode, error)) func() tea.Cmd {
		return func() tea.Cmd {
			serial := p.current().Serial
			return func() tea.Msg {
				code, err := fn(serial)
				return keyOpMsg{what: what, serial: serial, code: code, err: err}
			}
		}
	}
	svc, ctx, actor := c.Svc, c.Ctx, c.Actor
	noCode := func(err error) (app.IssuedCode, error) { return app.IssuedCode{}, err }
	shown := func() string { return sanitize.Text(p.current().Serial) }
	p.actions = []Action{
		{Key: key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "assign to the selected employee")), Perm: app.PermKeyAssign, OnItem: true, Priority: 6,
			Applies: func() (bool, string) {
				if ok, why := lifecycle(keylife.ActionAssign)(); !ok {
					return ok, why
				}
				e, _ := p.c.Selected("employee").(employeeItem)
				switch {
				case e.r == nil:
					return false, "select an employee in Employees first"
				case e.r.status != "active":
					return false, fmt.Sprintf("%s is %s: only active employees get keys", e.r.name, e.r.status)
				}
				return true, ""
			},
			Run: confirm(false, func() (string, string) {
				e := p.c.Selected("employee").(employeeItem)
				return fmt.Sprintf("Assign key %s to %s?", shown(), e.r.name),
					"The key becomes reserved and a one-time activation code is shown once; the employee activates the key with it on site."
			}, func() tea.Cmd {
				ref := p.c.Selected("employee").ID()
				return op("assign", func(serial string) (app.IssuedCode, error) { return svc.AssignKey(ctx, actor, serial, ref) })()
			})},
		{Key: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "activate (plugged in)")), Perm: app.PermKeyActivate, OnItem: true, Priority: 7,
			Applies: func() (bool, string) {
				if ok, why := lifecycle(keylife.ActionActivate)(); !ok {
					return ok, why
				}
				if !p.current().PluggedIn {
					return false, "plug the key in to activate it"
				}
				return true, ""
			},
			Run: func() tea.Cmd { return openDialog(newActivation(p.c, p.current().Serial)) }},
		{Key: key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "change own password (at the key)")), Perm: app.PermPasswordSelf, OnItem: true, Priority: 4,
			Applies: func() (bool, string) {
				k := p.current()
				switch {
				case k == nil:
					return false, "no key selected"
				case k.Status != string(keylife.StatusActive):
					return false, "not for " + aKey(k.Status)
				case !k.PluggedIn:
					return false, "plug the key in"
				}
				return true, ""
			},
			Run: func() tea.Cmd { return openDialog(newOwnPassword(p.c, p.current().Serial)) }},
		{Key: key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "new activation code")), Perm: app.PermKeyRenewCode, OnItem: true, Priority: 5,
			Applies: lifecycle(keylife.ActionRenewCode),
			Run: confirm(false, func() (string, string) {
				return fmt.Sprintf("New activation code for key %s?", shown()), "The old code stops working."
			}, op("renew", func(serial string) (app.IssuedCode, error) { return svc.RenewCode(ctx, actor, serial) }))},
		{Key: key.NewBinding(key.WithKeys("z"), key.WithHelp("z", "suspend")), Perm: app.PermKeySuspend, OnItem: true, Priority: 4,
			Applies: lifecycle(keylife.ActionSuspend),
			Run: confirm(true, func() (string, string) {
				return fmt.Sprintf("Suspend key %s?", shown()), "The key stops working until an operator unlocks it; then it is activated again with a new code."
			}, op("suspend", func(serial string) (app.IssuedCode, error) { return noCode(svc.SuspendKey(ctx, actor, serial, "")) }))},
		{Key: key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "unlock")), Perm: app.PermKeyUnlock, OnItem: true, Priority: 4,
			Applies: lifecycle(keylife.ActionUnlock),
			Run: confirm(false, func() (string, string) {
				return fmt.Sprintf("Unlock key %s?", shown()), "The key is reserved for its employee again, with a new activation code."
			}, op("unlock", func(serial string) (app.IssuedCode, error) { return svc.UnlockKey(ctx, actor, serial, "") }))},
		{Key: key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "withdraw")), Perm: app.PermKeyWithdraw, OnItem: true, Priority: 3,
			Applies: lifecycle(keylife.ActionWithdraw),
			Run: confirm(true, func() (string, string) {
				return fmt.Sprintf("Withdraw key %s?", shown()), "The key is taken from its employee (deactivated). Plugged in again, it is wiped and is ready for someone else."
			}, op("withdraw", func(serial string) (app.IssuedCode, error) { return noCode(svc.WithdrawKey(ctx, actor, serial, "")) }))},
		{Key: key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "lost/stolen/broken")), Perm: app.PermKeyCompromise, OnItem: true, Priority: 2,
			Applies: lifecycle(keylife.ActionCompromise),
			Run:     func() tea.Cmd { return openDialog(p.compromiseDialog(p.current().Serial)) }},
		{Key: key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "new simulated key")), Perm: app.PermKeyAdd, Priority: 1,
			Applies: simulated,
			Run: func() tea.Cmd {
				return func() tea.Msg {
					serial, err := svc.NewSimulatedKey(ctx, actor, "")
					return keyOpMsg{what: "new simulated key", serial: serial, err: err}
				}
			}},
		{Key: key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "plug simulated key in/out")), Perm: app.PermKeyAdd, OnItem: true, Priority: 1,
			Applies: func() (bool, string) {
				if ok, why := simulated(); !ok {
					return ok, why
				}
				return p.current() != nil, "no key selected"
			},
			Run: func() tea.Cmd {
				serial, in := p.current().Serial, !p.current().PluggedIn
				return func() tea.Msg {
					what := "unplugged"
					if in {
						what = "plugged in"
					}
					return keyOpMsg{what: what, serial: serial, err: svc.SetSimulatedKeyPlugged(ctx, actor, serial, in)}
				}
			}},
	}
	return p
}

// compromiseDialog asks lost, stolen or broken, then for the serial typed
// again: marking a key compromised is final.
func (p *keysPane) compromiseDialog(serial string) Dialog {
	shown := sanitize.Text(serial)
	svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
	pick := func(reason keylife.Reason) func() (Dialog, tea.Cmd) {
		return func() (Dialog, tea.Cmd) {
			d := newInput(p.c, fmt.Sprintf("Mark key %s %s? This is final.", shown, reasonWords[reason]), "Type the key's serial to confirm.", serial, nil)
			d.submitWaits(func(string) tea.Cmd {
				return func() tea.Msg {
					return keyOpMsg{what: "compromise", serial: serial, err: svc.CompromiseKey(ctx, actor, serial, reason, "")}
				}
			})
			d.danger = true
			d.valid = func(v string) (bool, string) { return v == serial, "that is not this key's serial" }
			return d, nil
		}
	}
	return &choiceDialog{danger: true, title: fmt.Sprintf("Key %s: lost, stolen or broken?", shown), body: "A compromised key is never used again.", keys: p.c.Keys,
		choices: []choice{{"l", "lost", pick(keylife.ReasonLost)}, {"s", "stolen", pick(keylife.ReasonStolen)}, {"b", "broken", pick(keylife.ReasonBroken)}}}
}

func (p *keysPane) Title() string     { return p.list.title(p.width, paneKeys, "", len(p.keys)) }
func (p *keysPane) Init() tea.Cmd     { return p.reload() }
func (p *keysPane) Rows() int         { return max(len(p.keys), 1) + 1 } // and the column header
func (p *keysPane) Actions() []Action { return p.actions }
func (p *keysPane) SetFocused(f bool) { p.focused = f }

func (p *keysPane) SetSize(w, h int) {
	p.width, p.height = w, h
	p.list.clamp(len(p.keys), p.listRows())
}

func (p *keysPane) listRows() int { return max(1, p.height-1) }

func (p *keysPane) reload() tea.Cmd { return p.loader.start(p.load) }

func (p *keysPane) load() tea.Cmd {
	svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
	return func() tea.Msg {
		l, err := svc.Keys(ctx, actor)
		return keysMsg{list: l, err: err}
	}
}

func (p *keysPane) current() *app.KeyView {
	if len(p.keys) == 0 {
		return nil
	}
	p.list.clamp(len(p.keys), p.listRows())
	return &p.keys[p.list.cursor]
}

func (p *keysPane) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case keysMsg:
		again := p.loader.done(p.load)
		if msg.err != nil {
			return tea.Batch(again, notify("loading keys failed: %v", msg.err))
		}
		var serial string
		if k := p.current(); k != nil {
			serial = k.Serial
		}
		p.keys = msg.list
		for i := range p.keys {
			if p.keys[i].Serial == serial {
				p.list.cursor = i
			}
		}
		p.list.clamp(len(p.keys), p.listRows())
		return again
	case keyOpMsg:
		return tea.Batch(p.opDone(msg), p.reload())
	case eventMsg:
		return p.event(msg.e)
	case tea.KeyMsg:
		if d, ok := p.c.Keys.movement(msg, p.listRows()); ok {
			p.list.move(d, len(p.keys), p.listRows())
		}
	case clickMsg:
		if i := p.list.offset + msg.row - 1; msg.row >= 1 && i < len(p.keys) {
			p.list.cursor = i
		}
	case scrollMsg:
		p.list.move(msg.delta, len(p.keys), p.listRows())
	}
	return nil
}

func (p *keysPane) event(e app.Event) tea.Cmd {
	switch e := e.(type) {
	case app.DataChanged:
		if e.What.Has(app.ChangedKeys) {
			return p.reload()
		}
	case app.EventsLost:
		return p.reload()
	case app.KeyPlugged:
		// Only keys plugged in where this console is (its place) arrive.
		shown := sanitize.Text(e.Serial)
		switch {
		case !e.PluggedIn:
		case e.Status == string(keylife.StatusReserved) && p.c.Can(app.PermKeyActivate):
			// The activation screen: the key was plugged in on site.
			d := newActivation(p.c, e.Serial)
			return tea.Batch(p.reload(), func() tea.Msg { return openDialogMsg{d: d, ifIdle: true} })
		case e.Status == string(keylife.StatusSuspended) || e.Status == string(keylife.StatusLocked):
			return tea.Batch(p.reload(), notify("key %s is %s: it must be unlocked (with a new code) before it can be activated", shown, keyStatusWords(e.Status, "")))
		case e.Status == app.StatusUnverifiedDevice:
			return tea.Batch(p.reload(), notify("a device claiming to be key %s did not prove it: it is not that key, and nothing about key %s changed", shown, shown))
		}
		return p.reload()
	case app.KeyProblem:
		return notify("a key plugged in could not be handled: %s", firstLine(e.Err))
	}
	return nil
}

// opDone shows how a key operation ended: a code dialog when a code was
// issued, otherwise a message.
func (p *keysPane) opDone(msg keyOpMsg) tea.Cmd {
	shown := sanitize.Text(msg.serial)
	switch {
	case msg.err != nil && msg.shown:
		return nil
	case msg.err != nil:
		return notify("%s %s: %s", msg.what, shown, userError(msg.err))
	case !msg.code.IsZero():
		return openDialog(&codeDialog{keys: p.c.Keys, code: msg.code.String(), title: fmt.Sprintf("Activation code for key %s", shown),
			body: fmt.Sprintf("The code expires %s and is shown only now. Give it to the employee; they plug the key in and enter it.", timeWords(msg.code.ExpiresAt, p.c.Now()))})
	case msg.what == "new simulated key":
		return notify("simulated key %s plugged in", shown)
	}
	return notify("key %s: %s", shown, msg.what)
}

func (p *keysPane) Selected() Item {
	k := p.current()
	if k == nil {
		return nil
	}
	var can []string
	for _, a := range p.actions {
		if ok, _ := a.applies(); ok && a.OnItem && p.c.Can(a.Perm) {
			can = append(can, a.Key.Help().Desc+" ("+a.Key.Help().Key+")")
		}
	}
	return keyItem{*k, can}
}

// View draws the column header and the visible keys. The columns fit what
// they hold: the status in words ("locked, too many wrong codes"), or the
// status alone where the pane is too narrow for why; when it last reported
// ("2 minutes ago") where there is room.
func (p *keysPane) View() string {
	st, cw := p.c.Styles, p.width
	rows := p.listRows()
	p.list.clamp(len(p.keys), rows)
	type row struct{ serial, status, short, owner, seen, plugged string }
	var shown []row
	serialW, statusW, shortW, seenW := len("SERIAL"), len("STATUS"), len("STATUS"), len("SEEN")
	for i := p.list.offset; i < len(p.keys) && len(shown) < rows; i++ {
		kv := p.keys[i]
		r := row{serial: sanitize.Text(kv.Serial), status: keyStatus(kv), short: keyStatusWords(kv.Status, ""), owner: sanitize.Text(kv.Owner), seen: "-"}
		if r.owner == "" {
			r.owner = "-"
		}
		if kv.PluggedIn {
			r.plugged = "yes"
		}
		r.seen = seenWords(kv, p.c.Now())
		serialW, statusW = max(serialW, ansi.StringWidth(r.serial)), max(statusW, ansi.StringWidth(r.status))
		shortW, seenW = max(shortW, ansi.StringWidth(r.short)), max(seenW, ansi.StringWidth(r.seen))
		shown = append(shown, r)
	}
	// The mark, the columns and a space after each, IN last (3 cells).
	serialW = min(serialW, 16, max(6, cw/3))
	const ownerMin, inW = 8, 3
	rest := cw - 2 - (serialW + 1) - inW // for status, owner and seen
	statusW = min(statusW, 32)
	if statusW+1+ownerMin+1 > rest {
		statusW = min(shortW, max(6, rest-ownerMin-1)) // the status alone
	}
	if statusW+1+ownerMin+1+seenW+1 > rest || cw < 60 {
		seenW = 0
	}
	ownerW := rest - (statusW + 1) - 1
	if seenW > 0 {
		ownerW -= seenW + 1
	}
	col := func(mark, serial, status, owner, seen, plugged string) string {
		line := mark + fit(serial, serialW) + " " + fit(status, statusW) + " " + fit(owner, max(1, ownerW)) + " "
		if seenW > 0 {
			line += fit(seen, seenW) + " "
		}
		return line + fit(plugged, inW)
	}
	lines := []string{st.Label.Render(col("  ", "SERIAL", "STATUS", "OWNER", "SEEN", "IN"))}
	if len(p.keys) == 0 {
		hint := "no keys: plug one in"
		if p.c.Svc != nil && p.c.Svc.HasSimulatedKeys() {
			hint += " (n: new simulated key)"
		}
		return block(append(lines, st.Dim.Render(hint)), p.width, p.height)
	}
	for j, r := range shown {
		i := p.list.offset + j
		kv := p.keys[i]
		mark := "  "
		if i == p.list.cursor {
			mark = "› "
		}
		status := r.status
		if ansi.StringWidth(status) > statusW {
			status = r.short // why is in Details
		}
		line := col(mark, r.serial, status, r.owner, r.seen, r.plugged)
		switch {
		case i == p.list.cursor && p.focused:
			line = st.Selected.Render(line)
		case i == p.list.cursor:
			line = st.SelectedDim.Render(line)
		case kv.Status == app.StatusUnverifiedDevice:
			line = st.Err.Render(line)
		case kv.Status == string(keylife.StatusCompromised) || kv.Status == string(keylife.StatusDeactivated):
			line = st.Dim.Render(line)
		}
		lines = append(lines, line)
	}
	return block(lines, p.width, p.height)
}

// keyStatus is a key's status and why, in words.
func keyStatus(k app.KeyView) string {
	if k.Status == app.StatusUnverifiedDevice {
		return "UNVERIFIED device"
	}
	return keyStatusWords(k.Status, k.Reason)
}

// keyItem is a key as the Details pane describes it, with what the
// operator can do with it now.
type keyItem struct {
	k   app.KeyView
	can []string
}

func (k keyItem) Kind() string       { return "key" }
func (p *keysPane) ItemKind() string { return "key" }
func (k keyItem) ID() string         { return k.k.Serial }

func (k keyItem) DetailLines(c *Common, cw int) []string {
	kv, now := k.k, c.Now()
	var out []string
	add := func(label, value string) { out = append(out, wrapField(c, label, value, cw)...) }
	if kv.Status == app.StatusUnverifiedDevice {
		add("Device", "claims serial "+sanitize.Text(kv.Serial))
		add("Status", c.Styles.Err.Render("UNVERIFIED: it is not that key"))
		add("Why", sanitize.Text(kv.Unverified))
		add("Plugged", timeWords(kv.StatusChangedAt, now))
		return append(out, "", c.Styles.Dim.Render("Nothing about the key it claims to be changes. Unplug it."))
	}
	add("Serial", sanitize.Text(kv.Serial))
	add("Status", keyStatus(kv))
	if kv.Owner != "" {
		add("Owner", sanitize.Text(kv.Owner)+" "+sanitize.Text(kv.OwnerEmail))
	}
	if kv.Model != "" {
		add("Model", sanitize.Text(kv.Model)+" "+sanitize.Text(kv.Firmware))
	}
	plugged := "no"
	if kv.PluggedIn {
		plugged = "yes"
	}
	add("Plugged", plugged)
	if seen := seenWords(kv, now); seen != "-" {
		if kv.DeviceState != "" {
			seen += ", reporting " + sanitize.Text(kv.DeviceState)
		}
		add("Seen", seen)
	}
	switch kv.Attestation {
	case "verified":
		add("Identity", "attested by "+sanitize.Text(kv.Maker)+", attestation key "+kv.AttestationKey)
	case "unattested":
		add("Identity", c.Styles.Warn.Render("no attestation (require_attestation = false)"))
	default:
		add("Identity", "not proved yet: plug it in")
	}
	if kv.CodeExpiresAt != nil {
		add("Code", fmt.Sprintf("expires %s, %s", timeWords(*kv.CodeExpiresAt, now), count(kv.CodeAttempts, "wrong attempt")))
	}
	add("Changed", timeWords(kv.StatusChangedAt, now))
	can := "nothing"
	if len(k.can) > 0 {
		can = strings.Join(k.can, ", ")
	}
	out = append(out, "")
	return append(out, wrapField(c, "You can", c.Styles.Dim.Render(can), cw)...)
}
