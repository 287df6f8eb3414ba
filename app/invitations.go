package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"keydesk/enroll"
	"keydesk/keys"
	"keydesk/mailer"
	"keydesk/store"
)

// Invitations of import-only employees: a person without a key gets one
// email with a one-time enrollment code, with which they register an
// authenticator app (enrollment.go). The decision to invite is committed
// with what caused it (the sync that imported the person, an operator's
// invite) together with a message in the durable outbox; the outbox is
// sent afterwards and retried with backoff, so a crash between deciding
// and sending neither loses an invitation nor sends it twice (but for the
// moment between the server's acceptance and its record, when the message
// goes again with the same Message-ID).

// outboxInvitation is the outbox kind of an invitation email.
const outboxInvitation = "invitation"

// mailActor sends the outbox (the scheduler, or the command that decided).
var mailActor = Actor{Name: "system:mail", Role: RoleHelpdesk, Auth: Auth{Method: AuthSystem}}

// WithMailer sends the outbox through m instead of the configured SMTP
// server (tests that inject failures).
func WithMailer(m mailer.Sender) Option { return func(s *Service) { s.mail.sender = m } }

// mailState is the service's mail sender and templates, made on first use.
type mailState struct {
	mu        sync.Mutex
	sender    mailer.Sender
	templates *mailer.Templates
	wake      chan struct{} // a message was put in the outbox
}

// mailer is the sender and the templates (an error when no server is
// configured, or the templates are broken).
func (s *Service) mailer() (mailer.Sender, *mailer.Templates, error) {
	s.mail.mu.Lock()
	defer s.mail.mu.Unlock()
	if s.mail.sender == nil {
		m, err := mailer.New(s.cfg.Mail)
		if err != nil {
			return nil, nil, err
		}
		s.mail.sender = m
	}
	if s.mail.templates == nil {
		t, err := mailer.LoadTemplates(s.cfg.Invitations.TemplatesDir)
		if err != nil {
			return nil, nil, err
		}
		s.mail.templates = t
	}
	return s.mail.sender, s.mail.templates, nil
}

// mailWake is the channel the mail loop waits on.
func (s *Service) mailWake() chan struct{} {
	s.mail.mu.Lock()
	defer s.mail.mu.Unlock()
	if s.mail.wake == nil {
		s.mail.wake = make(chan struct{}, 1)
	}
	return s.mail.wake
}

func (s *Service) wakeMail() {
	select {
	case s.mailWake() <- struct{}{}:
	default:
	}
}

// ErrNoMail: invitations need a mail server.
var ErrNoMail = errors.New("no mail server is configured: set [mail] host, from and security (see README, Invitations)")

// invitationBinding binds an invitation's sealed code to its row.
func invitationBinding(id int64) string { return "invitation:" + strconv.FormatInt(id, 10) }

// invite records a new invitation of e (replacing a live one when resend)
// and puts its email in the outbox, in tx; an operator's invitation is an
// audit entry of its own (a sync's are counted in the sync's entry). It
// returns the invitation.
func (s *Service) invite(ctx context.Context, tx *store.Tx, a Actor, k inviteKeys, e *store.Employee, resend bool, why string) (*store.Invitation, error) {
	mk, pepper := k.mk, k.pepper
	var err error
	replaced := int64(0)
	if resend {
		if replaced, err = tx.ReplaceInvitation(ctx, e.ID); err != nil {
			return nil, err
		}
	}
	code, err := enroll.NewCode()
	if err != nil {
		return nil, err
	}
	now := tx.Now()
	in := &store.Invitation{EmployeeID: e.ID, Email: e.Email, CodeHash: enroll.Hash(pepper, code), Actor: a.Name,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.Invitations.CodeTTL.Duration)}
	if err := tx.InsertInvitation(ctx, in); err != nil {
		return nil, err
	}
	sealed, err := mk.Seal([]byte(code), invitationBinding(in.ID))
	if err != nil {
		return nil, err
	}
	var nonce [6]byte
	rand.Read(nonce[:])
	m := &store.OutboxMessage{Kind: outboxInvitation, InvitationID: &in.ID, Recipient: e.Email, PayloadSealed: sealed, NextAttemptAt: now,
		MessageID: fmt.Sprintf("invitation-%d-%s@keydesk", in.ID, hex.EncodeToString(nonce[:]))}
	if err := tx.Enqueue(ctx, m); err != nil {
		return nil, err
	}
	tx.AfterCommit(s.wakeMail)
	if why == inviteImported {
		return in, nil
	}
	details := map[string]any{"email": e.Email, "invitation": in.ID, "expires": in.ExpiresAt.Format(time.RFC3339)}
	if replaced != 0 {
		details["replaces"] = replaced
	}
	if err := s.audit(ctx, tx, a, "invitation.send", employeeTarget(e.ID), store.OutcomeSuccess, details); err != nil {
		return nil, err
	}
	return in, nil
}

// Why an invitation was made.
const (
	inviteImported = "imported" // a sync brought the person in
	inviteOperator = "operator" // an operator invited them
)

// inviteKeys are what an invitation is sealed and hashed with, opened once
// per transaction.
type inviteKeys struct {
	mk     *keys.MasterKey
	pepper []byte
}

func (s *Service) inviteKeys(ctx context.Context, tx *store.Tx) (inviteKeys, error) {
	mk, err := s.masterKey(ctx, tx)
	if err != nil {
		return inviteKeys{}, err
	}
	pepper, err := s.codePepper(ctx, tx)
	return inviteKeys{mk: mk, pepper: pepper}, err
}

// inviteNewlyImported invites, in the sync's transaction, the employees
// this sync brought into a domain with invitations on (or gave an email):
// those with an email, still here, holding no key and never invited
// before. It returns the employees invited (the sync's audit entry names
// them).
func (s *Service) inviteNewlyImported(ctx context.Context, tx *store.Tx, a Actor, domain string, candidates []*store.Employee) ([]int64, error) {
	if !s.invitationsOn(domain) || len(candidates) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(candidates))
	for _, e := range candidates {
		ids = append(ids, e.ID)
	}
	invited, err := tx.EverInvited(ctx, ids)
	if err != nil {
		return nil, err
	}
	holding, err := tx.HoldingKeys(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []int64
	var k *inviteKeys
	for _, e := range candidates {
		if e.EmailNorm == "" || e.Status != store.StatusActive || holding[e.ID] {
			continue
		}
		resend := false
		if invited[e.ID] {
			// Invited before: only an invitation still in force that went
			// to another address is sent again, to the new one (the code
			// at the old address stops working).
			live, err := tx.LiveInvitation(ctx, e.ID)
			if errors.Is(err, store.ErrNotFound) || err == nil && strings.EqualFold(live.Email, e.Email) {
				continue
			}
			if err != nil {
				return nil, err
			}
			resend = true
		}
		invited[e.ID] = true // one even if the person came in twice
		if k == nil {
			keys, err := s.inviteKeys(ctx, tx)
			if err != nil {
				return nil, err
			}
			k = &keys
		}
		if _, err := s.invite(ctx, tx, a, *k, e, resend, inviteImported); err != nil {
			return nil, fmt.Errorf("invite %s: %w", e.Email, err)
		}
		out = append(out, e.ID)
	}
	return out, nil
}

// invitationsOn reports whether the domain sends invitations.
func (s *Service) invitationsOn(domain string) bool {
	for _, d := range s.cfg.Domains {
		if strings.EqualFold(d.Name, domain) {
			return d.Invitations.Enabled && s.cfg.Mail.Configured()
		}
	}
	return false
}

// InviteResult is what Invite did for one person.
type InviteResult struct {
	Email     string    `json:"email"`
	Employee  int64     `json:"employee,omitempty"`
	Invited   bool      `json:"invited"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// ErrAlreadyInvited: the person has a live invitation (resend to replace
// it).
var ErrAlreadyInvited = errors.New("already invited")

// Invite sends invitations to the people with these emails (or employee
// ids): each gets a new enrollment code. A person with a live invitation is
// left alone unless resend, which replaces it (its code stops working).
// Each person is decided in a transaction of their own; the messages are
// put in the outbox, which DeliverMail sends.
func (s *Service) Invite(ctx context.Context, a Actor, who []string, resend bool) ([]InviteResult, error) {
	if err := s.authorize(ctx, a, PermInvitationSend, "invitations"); err != nil {
		return nil, err
	}
	if !s.cfg.Mail.Configured() {
		return nil, ErrNoMail
	}
	out := make([]InviteResult, 0, len(who))
	failed := 0
	for _, w := range who {
		r := InviteResult{Email: w}
		err := s.st.Update(ctx, func(tx *store.Tx) error {
			e, err := s.lookupEmployee(ctx, tx, w)
			if err != nil {
				return err
			}
			r.Employee, r.Email = e.ID, e.Email
			switch {
			case e.Status != store.StatusActive:
				return fmt.Errorf("%s was removed on %s: only a current employee is invited", e.Email, e.RemovedAt.Format("2006-01-02"))
			case e.EmailNorm == "":
				return fmt.Errorf("employee %d has no email: set one in the directory, then sync", e.ID)
			}
			replace := resend
			if live, err := tx.LiveInvitation(ctx, e.ID); err == nil {
				// One that expired, or whose mail was given up, is
				// replaced without asking.
				usable := tx.Now().Before(live.ExpiresAt)
				if state, err := tx.MailState(ctx, live.ID); err != nil {
					return err
				} else if state == store.MailFailed {
					usable = false
				}
				if !resend && usable {
					return fmt.Errorf("%s: %w on %s, the code works until %s: resend to replace it (invite --resend)", e.Email, ErrAlreadyInvited,
						live.CreatedAt.Format("2006-01-02"), live.ExpiresAt.Format("2006-01-02 15:04"))
				}
				replace = true
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			k, err := s.inviteKeys(ctx, tx)
			if err != nil {
				return err
			}
			in, err := s.invite(ctx, tx, a, k, e, replace, inviteOperator)
			if err != nil {
				return err
			}
			r.Invited, r.ExpiresAt = true, in.ExpiresAt
			return nil
		})
		if err != nil {
			r.Error = err.Error()
			failed++
		}
		out = append(out, r)
	}
	s.publish(DataChanged{What: ChangedEmployees | ChangedAudit})
	if failed > 0 {
		return out, fmt.Errorf("%d of %d not invited", failed, len(who))
	}
	return out, nil
}

// MailReport says what a pass over the outbox did.
type MailReport struct {
	Sent    int `json:"sent"`
	Retry   int `json:"retry"`   // failed this time, tried again later
	GaveUp  int `json:"gave_up"` // failed for good
	Pending int `json:"pending"` // still waiting (not due yet)
	// Cancelled: dropped, its code could no longer be used (used, replaced,
	// expired; the person left or has another address).
	Cancelled int      `json:"cancelled"`
	Errors    []string `json:"errors,omitempty"`
}

// DeliverMail sends the outbox messages that are due, oldest first, one
// at a time: each attempt is counted (and its retry time set) before the
// message goes, so a process that dies while sending leaves it to be
// retried, never lost; a sent message's code is cleared from the database.
func (s *Service) DeliverMail(ctx context.Context, a Actor) (MailReport, error) {
	var rep MailReport
	if err := s.authorize(ctx, a, PermInvitationSend, "outbox"); err != nil {
		return rep, err
	}
	if !s.cfg.Mail.Configured() {
		return rep, nil
	}
	sender, tpl, senderErr := s.mailer()
	// One event for the pass (the console reloads once, not per message).
	defer func() {
		if rep.Sent+rep.Retry+rep.GaveUp+rep.Cancelled > 0 {
			s.publish(DataChanged{What: ChangedEmployees | ChangedAudit})
		}
	}()
	for ctx.Err() == nil {
		var due []store.OutboxMessage
		err := s.st.Update(ctx, func(tx *store.Tx) (err error) {
			due, err = tx.DueMessages(ctx, 20)
			return err
		})
		if err != nil || len(due) == 0 {
			if err == nil {
				rep.Pending, err = s.pendingMail(ctx)
			}
			return rep, err
		}
		for _, m := range due {
			retry := rep.Retry
			if err := s.deliverOne(ctx, m, sender, tpl, senderErr, &rep); err != nil {
				if errors.Is(err, store.ErrMessageTaken) {
					continue
				}
				return rep, err
			}
			if rep.Retry > retry {
				// The server is down, busy or misconfigured: the rest wait
				// for the next pass rather than fail one after another.
				rep.Pending, err = s.pendingMail(ctx)
				return rep, err
			}
		}
	}
	return rep, ctx.Err()
}

func (s *Service) pendingMail(ctx context.Context) (int, error) {
	n, _, err := s.st.PendingMail(ctx)
	return n, err
}

// deliverOne makes one attempt at m.
func (s *Service) deliverOne(ctx context.Context, m store.OutboxMessage, sender mailer.Sender, tpl *mailer.Templates, senderErr error, rep *MailReport) error {
	attempt := m.Attempts + 1
	var msg mailer.Message
	var prepErr error
	cancelled := false
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		// Until this attempt reports back, no other process may take the
		// message: at least as long as a send may take.
		hold := max(mailer.Backoff(attempt), 2*s.cfg.Mail.Timeout.Duration+30*time.Second)
		if err := tx.StartAttempt(ctx, m, tx.Now().Add(hold)); err != nil {
			return err
		}
		if why := s.unsendable(ctx, tx, m); why != "" {
			cancelled = true
			return tx.CancelMessage(ctx, m.ID, why)
		}
		if senderErr != nil {
			prepErr = senderErr
			return nil
		}
		msg, prepErr = s.composeInvitation(ctx, tx, m, tpl)
		return nil
	})
	if err != nil {
		return err
	}
	if cancelled {
		rep.Cancelled++
		return nil
	}
	sendErr := prepErr
	if sendErr == nil {
		sctx, cancel := context.WithTimeout(ctx, 2*s.cfg.Mail.Timeout.Duration)
		sendErr = sender.Send(sctx, msg)
		cancel()
	}
	ctx = context.WithoutCancel(ctx)
	giveUp := sendErr != nil && (mailer.Permanent(sendErr) || attempt >= mailer.MaxAttempts)
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		target := "outbox:" + strconv.FormatInt(m.ID, 10)
		if m.InvitationID != nil {
			target = "invitation:" + strconv.FormatInt(*m.InvitationID, 10)
		}
		if sendErr == nil {
			// Sent: the outbox row says when (the decision was audited).
			return tx.MessageSent(ctx, m.ID)
		}
		if err := tx.MessageNotSent(ctx, m.ID, sendErr.Error(), tx.Now().Add(mailer.Backoff(attempt)), giveUp); err != nil {
			return err
		}
		if !giveUp {
			return nil
		}
		return s.audit(ctx, tx, mailActor, "invitation.mail", target, store.OutcomeFailure, map[string]any{"to": m.Recipient, "attempt": attempt, "error": sendErr.Error()})
	})
	switch {
	case err != nil:
		return err
	case sendErr == nil:
		rep.Sent++
	case giveUp:
		rep.GaveUp++
		rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v (given up)", m.Recipient, sendErr))
	default:
		rep.Retry++
		rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v (tried again in %s)", m.Recipient, sendErr, mailer.Backoff(attempt)))
	}
	s.log.Info("invitation mail", "to", m.Recipient, "attempt", attempt, "err", sendErr)
	return nil
}

// unsendable says why m must not go ("" when it may): its code can no
// longer be used (used, replaced, expired), or its person left or has
// another address now.
func (s *Service) unsendable(ctx context.Context, tx *store.Tx, m store.OutboxMessage) string {
	if m.InvitationID == nil {
		return ""
	}
	in, err := tx.InvitationByID(ctx, *m.InvitationID)
	switch {
	case err != nil:
		return ""
	case in.UsedAt != nil || in.ReplacedAt != nil:
		return "the invitation was used or replaced before its mail went"
	case !tx.Now().Before(in.ExpiresAt):
		return "the code expired before its mail could go"
	}
	e, err := tx.Employee(ctx, in.EmployeeID)
	switch {
	case err != nil:
		return ""
	case e.Status != store.StatusActive:
		return "the person left"
	case !strings.EqualFold(e.Email, m.Recipient):
		return "the person's email changed"
	}
	return ""
}

// composeInvitation renders m's invitation with its code (opened from the
// outbox) and the employee's current name.
func (s *Service) composeInvitation(ctx context.Context, tx *store.Tx, m store.OutboxMessage, tpl *mailer.Templates) (mailer.Message, error) {
	if m.Kind != outboxInvitation || m.InvitationID == nil || m.PayloadSealed == nil {
		return mailer.Message{}, &mailer.PermanentError{Err: fmt.Errorf("outbox message %d is not an invitation KeyDesk can send", m.ID)}
	}
	mk, err := s.masterKey(ctx, tx)
	if err != nil {
		return mailer.Message{}, err
	}
	code, err := mk.Open(m.PayloadSealed, invitationBinding(*m.InvitationID))
	if err != nil {
		return mailer.Message{}, &mailer.PermanentError{Err: fmt.Errorf("open the code of invitation %d: %w", *m.InvitationID, err)}
	}
	defer clear(code)
	in, err := tx.InvitationByID(ctx, *m.InvitationID)
	if err != nil {
		return mailer.Message{}, err
	}
	name := in.Email
	if e, err := tx.Employee(ctx, in.EmployeeID); err == nil && e.DisplayName != "" {
		name = e.DisplayName
	}
	where := s.cfg.Invitations.Where
	if where == "" {
		where = "to the KeyDesk kiosk, or to the helpdesk,"
	}
	return tpl.Invitation(m.MessageID, mailer.Invitation{Name: name, Email: m.Recipient, Code: enroll.Code(code).String(),
		Expires: in.ExpiresAt.Local().Format("Mon 2 Jan 2006 15:04 MST"), Organisation: s.cfg.Invitations.Organisation, Where: where})
}

// InvitationView is an employee's newest invitation, as the console and
// `keydesk invitations` show it.
type InvitationView struct {
	Employee   int64      `json:"employee"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	State      string     `json:"state"`  // see invitationState
	Detail     string     `json:"detail"` // the last error, or when the next attempt is
	InvitedAt  time.Time  `json:"invited_at"`
	InvitedBy  string     `json:"invited_by"`
	ExpiresAt  time.Time  `json:"expires_at"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
	Attempts   int        `json:"attempts"`
	EnrolledAt *time.Time `json:"enrolled_at,omitempty"`
}

// The states of an invitation, as shown.
const (
	InviteQueued    = "queued"    // decided, not tried yet
	InviteRetrying  = "retrying"  // a send failed; tried again later
	InviteSent      = "sent"      // the mail server took it
	InviteFailed    = "failed"    // given up: resend once the cause is mended
	InviteEnrolled  = "enrolled"  // the code was used: the person has an authenticator
	InviteReset     = "reset"     // the code was used, and the authenticator reset since: resend
	InviteExpired   = "expired"   // the code expired unused
	InviteCancelled = "cancelled" // replaced before it was sent
)

// invitationState decides what an invitation's row means at now.
func invitationState(v store.InvitationView, now time.Time) (string, string) {
	switch {
	case v.UsedAt != nil && v.EnrolledAt == nil:
		return InviteReset, "the authenticator was reset: resend to enroll again"
	case v.UsedAt != nil:
		return InviteEnrolled, ""
	case v.MailState == store.MailFailed:
		return InviteFailed, v.LastError
	case v.MailState == store.MailCancelled || v.ReplacedAt != nil:
		return InviteCancelled, ""
	case !now.Before(v.ExpiresAt):
		return InviteExpired, ""
	case v.MailState == store.MailSent:
		return InviteSent, ""
	case v.MailState == store.MailPending && v.Attempts > 0:
		d := ""
		if v.NextAttemptAt != nil {
			d = "next try " + v.NextAttemptAt.Local().Format("15:04") + ": "
		}
		return InviteRetrying, d + v.LastError
	}
	return InviteQueued, ""
}

func (s *Service) viewInvitation(v store.InvitationView) InvitationView {
	st, detail := invitationState(v, s.now())
	return InvitationView{Employee: v.EmployeeID, Email: v.Email, Name: v.DisplayName, State: st, Detail: detail,
		InvitedAt: v.CreatedAt, InvitedBy: v.Actor, ExpiresAt: v.ExpiresAt, SentAt: v.SentAt, Attempts: v.Attempts, EnrolledAt: v.EnrolledAt}
}

// Invitations lists each invited employee's newest invitation, newest
// first.
func (s *Service) Invitations(ctx context.Context, a Actor) ([]InvitationView, error) {
	if err := s.authorize(ctx, a, PermRead, "invitations"); err != nil {
		return nil, err
	}
	vs, err := s.st.Invitations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]InvitationView, len(vs))
	for i, v := range vs {
		out[i] = s.viewInvitation(v)
	}
	return out, nil
}

// InvitationOf is the employee's newest invitation (nil when they were
// never invited).
func (s *Service) InvitationOf(ctx context.Context, a Actor, employeeID int64) (*InvitationView, error) {
	if err := s.authorize(ctx, a, PermRead, employeeTarget(employeeID)); err != nil {
		return nil, err
	}
	v, err := s.st.InvitationOf(ctx, employeeID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	iv := s.viewInvitation(*v)
	return &iv, nil
}
