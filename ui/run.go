package ui

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"keydesk/app"
)

// RunOptions say where the console draws and who uses it.
type RunOptions struct {
	Actor  app.Actor
	Label  string
	Input  io.Reader // default os.Stdin
	Output io.Writer // default os.Stdout
	// Environ is the terminal's environment (for NO_COLOR and TERM); default
	// the process's.
	Environ []string
	// Mailbox, when set, reads the messages the demo's local mail server
	// received (see Options.Mailbox).
	Mailbox func(ctx context.Context) ([]MailMessage, error)
	// About are lines the help screen ends with (see Options.About).
	About []string
}

// Renderer builds a renderer for a terminal (its colour profile follows the
// terminal's environment) and says whether to use colour: NO_COLOR turns
// colours off, while bold and reverse video remain.
func Renderer(out io.Writer, environ []string) (*lipgloss.Renderer, bool) {
	env := envFromList(environ)
	r := lipgloss.NewRenderer(out, termenv.WithEnvironment(env))
	// Asking the terminal for its background (OSC 11) can stall for seconds
	// where it gets no answer (tmux, some SSH clients), so the background is
	// read from COLORFGBG when set, and assumed dark otherwise.
	r.SetHasDarkBackground(darkBackground(env.Getenv("COLORFGBG")))
	return r, env.Getenv("NO_COLOR") == ""
}

// darkBackground reads COLORFGBG ("fg;bg", or "fg;default;bg"): background
// colours 0-6 and 8 are dark.
func darkBackground(colorfgbg string) bool {
	parts := strings.Split(colorfgbg, ";")
	bg, err := strconv.Atoi(parts[len(parts)-1])
	if colorfgbg == "" || err != nil {
		return true
	}
	return bg <= 6 || bg == 8
}

type envFromList []string

func (e envFromList) Environ() []string { return e }

func (e envFromList) Getenv(k string) string {
	for _, kv := range e {
		if len(kv) > len(k) && kv[:len(k)] == k && kv[len(k)] == '=' {
			return kv[len(k)+1:]
		}
	}
	return ""
}

// defaults fills in this process's terminal.
func (o *RunOptions) defaults() {
	if o.Input == nil {
		o.Input = os.Stdin
	}
	if o.Output == nil {
		o.Output = os.Stdout
	}
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
}

// Run shows the console until the user quits or ctx ends.
func Run(ctx context.Context, svc *app.Service, o RunOptions) error {
	o.defaults()
	r, color := Renderer(o.Output, o.Environ)
	m := New(svc, Options{Actor: o.Actor, Renderer: r, NoColor: !color, Context: ctx, Label: o.Label, Mailbox: o.Mailbox, About: o.About})
	defer m.Close()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(o.Input), tea.WithOutput(o.Output),
		tea.WithAltScreen(), tea.WithMouseCellMotion())
	if _, err := p.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

// RunKiosk shows the kiosk screen on this terminal until the operator
// leaves it with the exit code, or ctx ends.
func RunKiosk(ctx context.Context, svc *app.Service, o RunOptions, idle time.Duration, exitCode string) error {
	o.defaults()
	r, color := Renderer(o.Output, o.Environ)
	k := NewKiosk(svc, KioskOptions{Actor: o.Actor, Renderer: r, NoColor: !color, Context: ctx, Idle: idle, ExitCode: exitCode})
	defer k.Close()
	// ctrl+c is a key like any other here (only the exit code leaves), and
	// only the process's owner can stop it otherwise.
	p := tea.NewProgram(k, tea.WithContext(ctx), tea.WithInput(o.Input), tea.WithOutput(o.Output), tea.WithAltScreen(), tea.WithoutSignalHandler())
	if _, err := p.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("kiosk: %w", err)
	}
	return nil
}
