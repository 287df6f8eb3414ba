package app

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"keydesk/ldapsync"
	"keydesk/mailer"
)

// DoctorSection is the checks of one domain, or of the database.
type DoctorSection struct {
	Title  string           `json:"title"`
	Domain string           `json:"domain,omitempty"`
	Checks []ldapsync.Check `json:"checks"`
}

// DoctorReport is everything doctor found.
type DoctorReport struct {
	Sections []DoctorSection `json:"sections"`
}

// Failed reports whether any check failed.
func (r DoctorReport) Failed() bool {
	for _, s := range r.Sections {
		for _, c := range s.Checks {
			if c.Status == ldapsync.CheckFail {
				return true
			}
		}
	}
	return false
}

// Doctor diagnoses every configured domain (concurrently) and the database.
func (s *Service) Doctor(ctx context.Context, a Actor) (DoctorReport, error) {
	var rep DoctorReport
	if err := s.authorize(ctx, a, PermRead, "doctor"); err != nil {
		return rep, err
	}
	cfgChecks := []ldapsync.Check{}
	switch {
	case s.cfg.Path == "":
		cfgChecks = append(cfgChecks, ldapsync.Check{Name: "configuration", Status: ldapsync.CheckWarn, Detail: "no configuration file"})
	case len(s.cfg.Domains) == 0:
		cfgChecks = append(cfgChecks, ldapsync.Check{Name: "configuration", Status: ldapsync.CheckFail, Detail: s.cfg.Path + " configures no domain (or does not exist)", Fix: "add a [[domain]] section: see the README, \"Configuration\""})
	default:
		cfgChecks = append(cfgChecks, ldapsync.Check{Name: "configuration", Status: ldapsync.CheckPass, Detail: fmt.Sprintf("%s: %d domains (%s)", s.cfg.Path, len(s.cfg.Domains), strings.Join(s.cfg.DomainNames(), ", "))})
	}
	rep.Sections = append(rep.Sections, DoctorSection{Title: "configuration", Checks: cfgChecks})

	domains := make([]DoctorSection, len(s.cfg.Domains))
	var wg sync.WaitGroup
	for i, d := range s.cfg.Domains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			domains[i] = DoctorSection{Title: "domain " + d.Name, Domain: d.Name, Checks: ldapsync.Diagnose(ctx, d)}
		}()
	}
	wg.Wait()
	rep.Sections = append(rep.Sections, domains...)

	var db []ldapsync.Check
	if problems, err := s.st.IntegrityCheck(ctx); err != nil {
		db = append(db, ldapsync.Check{Name: "integrity", Status: ldapsync.CheckFail, Detail: err.Error()})
	} else if len(problems) > 0 {
		db = append(db, ldapsync.Check{Name: "integrity", Status: ldapsync.CheckFail, Detail: strings.Join(problems, "; "), Fix: "restore the database from a backup"})
	} else {
		db = append(db, ldapsync.Check{Name: "integrity", Status: ldapsync.CheckPass, Detail: s.st.Path() + " is consistent"})
	}
	if ar, err := s.verifyAudit(ctx); err != nil {
		db = append(db, ldapsync.Check{Name: "audit log", Status: ldapsync.CheckFail, Detail: err.Error()})
	} else if !ar.OK() {
		db = append(db, ldapsync.Check{Name: "audit log", Status: ldapsync.CheckFail, Detail: strings.Join(ar.Problems, "; "), Fix: "the audit log was tampered with: investigate, and keep a copy of the database as evidence"})
	} else {
		db = append(db, ldapsync.Check{Name: "audit log", Status: ldapsync.CheckPass, Detail: fmt.Sprintf("%d entries, chain intact", ar.Entries)})
	}
	rep.Sections = append(rep.Sections, DoctorSection{Title: "database", Checks: db})
	rep.Sections = append(rep.Sections, DoctorSection{Title: "keys", Checks: s.keyTrustChecks(ctx)})
	if s.cfg.Mail.Configured() {
		rep.Sections = append(rep.Sections, DoctorSection{Title: "mail", Checks: s.mailChecks(ctx)})
	}
	return rep, nil
}

// mailChecks try the mail server (connect, TLS, login; nothing is sent),
// the templates, and the outbox.
func (s *Service) mailChecks(ctx context.Context) []ldapsync.Check {
	var out []ldapsync.Check
	m := s.cfg.Mail
	where := fmt.Sprintf("%s:%d (%s)", m.Host, m.Port, m.Security)
	if _, err := mailer.LoadTemplates(s.cfg.Invitations.TemplatesDir); err != nil {
		out = append(out, ldapsync.Check{Name: "templates", Status: ldapsync.CheckFail, Detail: err.Error(), Fix: "mend the template, or remove it from invitations.templates_dir to use the built-in one"})
	} else {
		out = append(out, ldapsync.Check{Name: "templates", Status: ldapsync.CheckPass, Detail: "the invitation's subject, text and HTML render"})
	}
	smtp, err := mailer.New(m)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, m.Timeout.Duration)
		err = smtp.Check(cctx)
		cancel()
	}
	if err != nil {
		out = append(out, ldapsync.Check{Name: "server", Status: ldapsync.CheckFail, Detail: err.Error(),
			Fix: "check [mail] host, port and security (starttls on 587, tls on 465), the CA in ca_file, and the username and password"})
	} else {
		who := "without logging in"
		if m.Username != "" {
			who = "logged in as " + m.Username
		}
		out = append(out, ldapsync.Check{Name: "server", Status: ldapsync.CheckPass, Detail: where + ": connected, " + who})
	}
	if ivs, err := s.st.Invitations(ctx); err == nil {
		failed := 0
		for _, v := range ivs {
			if st, _ := invitationState(v, s.now()); st == InviteFailed {
				failed++
			}
		}
		if failed > 0 {
			out = append(out, ldapsync.Check{Name: "outbox", Status: ldapsync.CheckWarn, Detail: fmt.Sprintf("%d invitations could not be sent", failed),
				Fix: "see keydesk invitations; mend the cause, then keydesk invite --resend EMAIL"})
		}
	}
	return out
}

// keyTrustChecks say which makers' keys KeyDesk trusts and whether a key
// must prove its serial.
func (s *Service) keyTrustChecks(ctx context.Context) []ldapsync.Check {
	var out []ldapsync.Check
	if names := s.trustedMakers().Names(); len(names) == 0 {
		out = append(out, ldapsync.Check{Name: "trusted makers", Status: ldapsync.CheckWarn, Detail: "no key maker's CA is trusted: no key can prove its serial, so every key is refused",
			Fix: "add the PEM file of your keys' maker CA to [keys] trusted_makers"})
	} else {
		out = append(out, ldapsync.Check{Name: "trusted makers", Status: ldapsync.CheckPass, Detail: strings.Join(names, "; ")})
	}
	if s.requireAttestation() {
		out = append(out, ldapsync.Check{Name: "attestation", Status: ldapsync.CheckPass, Detail: "required: a key proves its serial with a trusted maker's attestation before KeyDesk believes anything it says"})
	} else {
		out = append(out, ldapsync.Check{Name: "attestation", Status: ldapsync.CheckWarn,
			Detail: "NOT REQUIRED ([keys] require_attestation = false): a device that cannot attest is taken for the key whose serial it claims; a clone of such a key cannot be told from it, and its word that it is blank returns a withdrawn key to stock",
			Fix:    "set require_attestation = true once every key in use can attest"})
	}
	switch n, err := s.st.UnattestedKeys(ctx); {
	case err != nil:
		out = append(out, ldapsync.Check{Name: "keys without attestation", Status: ldapsync.CheckFail, Detail: err.Error()})
	case n > 0:
		out = append(out, ldapsync.Check{Name: "keys without attestation", Status: ldapsync.CheckWarn, Detail: fmt.Sprintf("%d keys were registered without attestation", n),
			Fix: "replace them with keys that attest: `keydesk keys --json` lists them (\"attestation\": \"unattested\")"})
	}
	return out
}
