package ui

import (
	"context"
	"encoding/hex"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	bm "github.com/charmbracelet/wish/bubbletea"
	"github.com/muesli/termenv"

	"keydesk/app"
)

// KioskExitEnv is the environment variable in which a remote kiosk sends
// the SHA-256 (hex) of its exit code.
const KioskExitEnv = "KEYDESK_KIOSK_EXIT"

// SSHMiddleware serves the console to SSH sessions: one Bubble Tea program
// per session, in the session's own window size and colours (its TERM,
// NO_COLOR and COLORFGBG), ended when the connection drops (its context).
// actorOf gives the operator the session proved; a session without one
// gets nothing. Events reach every session through its own subscription,
// which a slow client cannot hold up for the others.
func SSHMiddleware(svc *app.Service, actorOf func(ssh.Session) (app.Actor, bool)) wish.Middleware {
	return bm.MiddlewareWithProgramHandler(func(sess ssh.Session) *tea.Program {
		a, ok := actorOf(sess)
		if !ok {
			return nil
		}
		pty, _, _ := sess.Pty()
		env := envFromList(append(sess.Environ(), "TERM="+pty.Term))
		// The session is the terminal (an emulated pty: the client's own
		// terminal is already raw); its colours come from its environment.
		r := lipgloss.NewRenderer(sess, termenv.WithEnvironment(env), termenv.WithUnsafe(), termenv.WithColorCache(true))
		r.SetHasDarkBackground(darkBackground(env.Getenv("COLORFGBG")))
		color := env.Getenv("NO_COLOR") == ""
		if pty.Term == "" || pty.Term == "dumb" {
			r.SetColorProfile(termenv.Ascii)
		}
		ctx := sess.Context()
		var m interface {
			tea.Model
			Close()
		}
		opts := []tea.ProgramOption{tea.WithAltScreen()}
		if a.Role == app.RoleKiosk {
			// A kiosk's session gets the kiosk screen, for the keys plugged
			// in at it. The kiosk machine sets its exit code, and sends
			// only its hash.
			exitHash, _ := hex.DecodeString(env.Getenv(KioskExitEnv))
			m = NewKiosk(svc, KioskOptions{Actor: a, Renderer: r, NoColor: !color, Context: ctx, Places: []string{a.Place}, ExitHash: exitHash})
		} else {
			// Keys plugged in somewhere are not this session's: it has a
			// place of its own.
			m = New(svc, Options{Actor: a, Renderer: r, NoColor: !color, Context: ctx, Places: []string{"ssh:" + ctx.SessionID()}})
			opts = append(opts, tea.WithMouseCellMotion())
		}
		context.AfterFunc(ctx, m.Close)
		// The window's size as the client gave it (later changes arrive as
		// messages).
		m.Update(tea.WindowSizeMsg{Width: pty.Window.Width, Height: pty.Window.Height})
		// A dropped connection ends the program: the middleware asks it to
		// quit when the session's context ends, which lets its input
		// reader finish; the program's own context, a second later, is the
		// backstop (ended by it alone, Bubble Tea does not wait for its
		// input reader). The server's signals are the server's: a SIGTERM
		// lets it tell the sessions it stops, and must not end them
		// unannounced.
		pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		context.AfterFunc(ctx, func() { time.AfterFunc(time.Second, stop) })
		return tea.NewProgram(m, append(opts, tea.WithInput(sess), tea.WithOutput(sess), tea.WithContext(pctx), tea.WithoutSignalHandler())...)
	}, termenv.Ascii)
}
