package app

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"keydesk/ldapsync"
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
	return rep, nil
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
