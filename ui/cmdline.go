package ui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/internal/sanitize"
)

// The command line (:, as k9s has it), for the less common actions: sync a
// domain, add or remove a person outside AD, invite, go to an employee by
// email. Tab completes the command, then its argument (domains, emails).

// command is one command of the command line.
type command struct {
	name, args, help string
	perm             app.Permission
	// complete lists the values the argument may take (nil: none).
	complete func(m *Model) []string
	run      func(m *Model, args []string) (tea.Cmd, error)
}

// cmdLine is the open command line.
type cmdLine struct {
	input textinput.Model
	hint  string // the candidates of the last completion, or an error
}

var cmdKey = key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command (sync, add, remove, invite, go)"))

func (m *Model) commands() []command {
	emails := func(m *Model) []string { return m.employeeEmails() }
	return []command{
		{name: "sync", args: "[DOMAIN]", help: "sync a domain now (all without one)", perm: app.PermSync,
			complete: func(m *Model) []string { return m.domainNames() },
			run: func(m *Model, args []string) (tea.Cmd, error) {
				if len(args) > 1 {
					return nil, fmt.Errorf("sync takes one domain at most")
				}
				if len(args) == 1 && !contains(m.domainNames(), args[0]) {
					return nil, fmt.Errorf("no domain %q: the domains are %s", args[0], strings.Join(m.domainNames(), ", "))
				}
				return tea.Batch(notify("syncing %s…", orAll(args)), startSync(m.c, args, false)), nil
			}},
		{name: "go", args: "EMAIL", help: "go to the employee with this email", perm: app.PermRead, complete: emails,
			run: func(m *Model, args []string) (tea.Cmd, error) {
				if len(args) != 1 {
					return nil, fmt.Errorf("go needs the employee's email")
				}
				m.mgr.focusName(paneEmployees)
				return func() tea.Msg { return gotoEmployeeMsg{email: args[0]} }, nil
			}},
		{name: "add", args: "EMAIL NAME", help: "add a person who is not in AD", perm: app.PermEmployeeAdd,
			run: func(m *Model, args []string) (tea.Cmd, error) {
				if len(args) < 2 {
					return nil, fmt.Errorf("add needs the email and the name: add guard@example.com Night Guard")
				}
				svc, ctx, actor, email, name := m.c.Svc, m.c.Ctx, m.c.Actor, args[0], strings.Join(args[1:], " ")
				return func() tea.Msg {
					e, err := svc.AddEmployee(ctx, actor, email, name)
					if err != nil {
						return noticeMsg{userError(err)}
					}
					return noticeMsg{sprintf("added employee %d: %s", e.ID, sanitize.Text(e.DisplayName))}
				}, nil
			}},
		{name: "remove", args: "EMAIL", help: "mark a person outside AD removed", perm: app.PermEmployeeRemove, complete: emails,
			run: func(m *Model, args []string) (tea.Cmd, error) {
				if len(args) != 1 {
					return nil, fmt.Errorf("remove needs the employee's email")
				}
				svc, ctx, actor, who := m.c.Svc, m.c.Ctx, m.c.Actor, args[0]
				m.dialog = newConfirm(m.c, "Remove "+sanitize.Text(who)+"?", "The person is marked removed (kept, and can be added again); their key is deactivated.", true,
					func() tea.Msg {
						if _, err := svc.RemoveEmployee(ctx, actor, who); err != nil {
							return noticeMsg{userError(err)}
						}
						return noticeMsg{"removed " + sanitize.Text(who)}
					})
				return nil, nil
			}},
		{name: "invite", args: "EMAIL", help: "send an invitation to enroll an authenticator", perm: app.PermInvitationSend, complete: emails,
			run: func(m *Model, args []string) (tea.Cmd, error) {
				if len(args) != 1 {
					return nil, fmt.Errorf("invite needs the employee's email")
				}
				svc, ctx, actor := m.c.Svc, m.c.Ctx, m.c.Actor
				return func() tea.Msg {
					res, err := svc.Invite(ctx, actor, args, false)
					if len(res) == 1 && res[0].Error != "" {
						return noticeMsg{sanitize.Text(res[0].Error)}
					}
					if err != nil {
						return noticeMsg{userError(err)}
					}
					return noticeMsg{"invited " + sanitize.Text(args[0])}
				}, nil
			}},
		{name: "quit", help: "leave the console", run: func(m *Model, _ []string) (tea.Cmd, error) { return m.quit(), nil }},
	}
}

// gotoEmployeeMsg asks the Employees pane to select the employee with this
// email.
type gotoEmployeeMsg struct{ email string }

func orAll(args []string) string {
	if len(args) == 0 {
		return "all domains"
	}
	return sanitize.Text(args[0])
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if strings.EqualFold(x, y) {
			return true
		}
	}
	return false
}

// domainNames are the domains the Domains pane lists.
func (m *Model) domainNames() []string {
	p, ok := m.mgr.pane(paneDomains).(*domainsPane)
	if !ok {
		return nil
	}
	var out []string
	for _, d := range p.domains {
		out = append(out, d.Name)
	}
	return out
}

// employeeEmails are the emails the Employees pane has loaded.
func (m *Model) employeeEmails() []string {
	p, ok := m.mgr.pane(paneEmployees).(*employeesPane)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(p.rows))
	for _, r := range p.rows {
		if r.email != "" {
			out = append(out, r.email)
		}
	}
	return out
}

// openCmdLine opens the command line.
func (m *Model) openCmdLine() tea.Cmd {
	in := newTextInput(":", "sync corp · go ann@example.com · add EMAIL NAME · tab completes", 200, max(20, m.width-4))
	m.cmd = &cmdLine{input: in}
	return m.cmd.input.Focus()
}

// cmdLineKey handles a key while the command line is open.
func (m *Model) cmdLineKey(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc:
		m.cmd = nil
		return nil
	case tea.KeyTab:
		m.complete()
		return nil
	case tea.KeyEnter:
		line := m.cmd.input.Value()
		cmd, err := m.runCommand(line)
		if err != nil {
			m.cmd.hint = err.Error()
			return nil
		}
		m.cmd = nil
		return cmd
	}
	var cmd tea.Cmd
	m.cmd.input, cmd = m.cmd.input.Update(msg)
	m.cmd.hint = ""
	return cmd
}

// runCommand runs a command line.
func (m *Model) runCommand(line string) (tea.Cmd, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil, nil
	}
	for _, c := range m.commands() {
		if c.name != fields[0] && !(c.name == "quit" && fields[0] == "q") {
			continue
		}
		if c.perm != "" && !m.c.Can(c.perm) {
			return nil, fmt.Errorf("your role (%s) cannot %s", m.c.Actor.Role, c.name)
		}
		return c.run(m, fields[1:])
	}
	return nil, fmt.Errorf("no command %q: the commands are %s", fields[0], strings.Join(m.commandNames(), ", "))
}

// commandNames are the commands this role may run.
func (m *Model) commandNames() []string {
	var out []string
	for _, c := range m.commands() {
		if c.perm == "" || m.c.Can(c.perm) {
			out = append(out, c.name)
		}
	}
	return out
}

// complete completes the command, or its argument: a single candidate is
// put in; several are listed, their common start put in.
func (m *Model) complete() {
	line := m.cmd.input.Value()
	fields := strings.Fields(line)
	var cands []string
	prefix, word := "", ""
	switch {
	case len(fields) == 0 || len(fields) == 1 && !strings.HasSuffix(line, " "):
		if len(fields) == 1 {
			word = fields[0]
		}
		cands = filterPrefix(m.commandNames(), word)
	default:
		for _, c := range m.commands() {
			if c.name == fields[0] && c.complete != nil {
				if !strings.HasSuffix(line, " ") {
					word = fields[len(fields)-1]
					fields = fields[:len(fields)-1]
				}
				prefix = strings.Join(fields, " ") + " "
				cands = filterPrefix(c.complete(m), word)
			}
		}
	}
	switch len(cands) {
	case 0:
		m.cmd.hint = "nothing to complete"
	case 1:
		m.cmd.input.SetValue(prefix + cands[0] + " ")
		m.cmd.input.CursorEnd()
		m.cmd.hint = ""
	default:
		m.cmd.input.SetValue(prefix + commonPrefix(cands))
		m.cmd.input.CursorEnd()
		shown := cands
		if len(shown) > 8 {
			shown = append(shown[:8:8], fmt.Sprintf("… %d more", len(cands)-8))
		}
		m.cmd.hint = strings.Join(shown, "  ")
	}
}

func filterPrefix(xs []string, p string) []string {
	var out []string
	for _, x := range xs {
		if strings.HasPrefix(strings.ToLower(x), strings.ToLower(p)) {
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

func commonPrefix(xs []string) string {
	p := xs[0]
	for _, x := range xs[1:] {
		for !strings.HasPrefix(strings.ToLower(x), strings.ToLower(p)) {
			p = p[:len(p)-1]
		}
	}
	return p
}

// cmdLineView is the footer while the command line is open.
func (m *Model) cmdLineView() string {
	line := m.cmd.input.View()
	if m.cmd.hint != "" {
		line += "  " + m.c.Styles.Dim.Render(sanitize.Text(m.cmd.hint))
	}
	return fit(" "+line, m.width)
}
