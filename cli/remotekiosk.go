package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"keydesk/internal/sanitize"
	"keydesk/keys/simkey"
	"keydesk/keys/usbhid"
	"keydesk/sshd"
	"keydesk/ui"
)

// remoteKiosk is keydesk kiosk --server: the kiosk screen that the server
// draws, on this terminal, over SSH with the kiosk's own key; the keys
// plugged in here are carried to the server in channels of the same
// connection. Nothing is stored here: no database, no secret.
type remoteKiosk struct {
	server, keyFile, hostKey, tap string
}

func (g *globals) runRemoteKiosk(ctx context.Context, o remoteKiosk) error {
	u, err := url.Parse(o.server)
	if err != nil || u.Scheme != "ssh" || u.Host == "" {
		return fmt.Errorf("--server %q: write it like ssh://keydesk-host:2222", o.server)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "2222")
	}
	user := "kiosk"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	if o.keyFile == "" || o.hostKey == "" {
		return errors.New("a kiosk connects with its own key and checks the server's: give --key FILE and --host-key SHA256:... (keydesk serve --fingerprint prints it)")
	}
	exit, err := g.readExitCode()
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(o.keyFile)
	if err != nil {
		return fmt.Errorf("the kiosk's key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		return fmt.Errorf("the kiosk's key %s: %w", o.keyFile, err)
	}
	cfg := &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
			if fp := gossh.FingerprintSHA256(key); fp != o.hostKey {
				return fmt.Errorf("the server's host key is %s, not %s: it is not the KeyDesk server you named (or its key changed): nothing was sent", fp, o.hostKey)
			}
			return nil
		}}
	client, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()

	in, out := os.Stdin, os.Stdout
	w, h, err := term.GetSize(int(out.Fd()))
	if err != nil {
		w, h = 80, 24
	}
	termName := os.Getenv("TERM")
	if termName == "" {
		termName = "xterm-256color"
	}
	if err := sess.RequestPty(termName, h, w, gossh.TerminalModes{}); err != nil {
		return err
	}
	// The server's kiosk screen leaves only with the exit code: it gets its
	// hash, never the code.
	sum := sha256.Sum256([]byte(exit))
	if err := sess.Setenv(ui.KioskExitEnv, hex.EncodeToString(sum[:])); err != nil {
		return fmt.Errorf("send the kiosk's exit code: %w", err)
	}
	sess.Stdout, sess.Stderr = out, out
	stdin, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	state, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return fmt.Errorf("the kiosk needs a terminal: %w", err)
	}
	defer term.Restore(int(in.Fd()), state)
	if err := sess.Shell(); err != nil {
		return err
	}
	go io.Copy(stdin, in)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			if w, h, err := term.GetSize(int(out.Fd())); err == nil {
				sess.WindowChange(h, w)
			}
		}
	}()

	// The keys plugged in here go to the server.
	log := g.logger()
	fwd := &sshd.Forwarder{Conn: client, Log: func(err error) { log.Warn("kiosk key", "err", err) }}
	if o.tap != "" {
		f, err := os.OpenFile(o.tap, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		fwd.Tap = f
	}
	kctx, stop := context.WithCancel(ctx)
	defer stop()
	report := func(err error) { log.Warn("keys", "err", sanitize.Lines(err.Error())) }
	if g.simKeys != "" {
		dir, err := simkey.NewDir(g.simKeys)
		if err != nil {
			return err
		}
		go dir.Feed(kctx, time.Second, fwd, report)
	}
	ucfg, err := g.loadConfig()
	if err == nil {
		go usbhid.Feed(kctx, usbConfig(ucfg), usbhid.DefaultInterval, fwd, report)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		// The server ends the session when the kiosk is left (with or
		// without an exit status): only a broken connection is an error.
		var exited *gossh.ExitError
		var missing *gossh.ExitMissingError
		if err != nil && !errors.As(err, &exited) && !errors.As(err, &missing) {
			return fmt.Errorf("the kiosk session: %w", err)
		}
		return nil
	case <-ctx.Done():
		return nil
	}
}
