package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"keydesk/enroll"
	"keydesk/store"
)

// Enrollment of an authenticator app: the person enters the code of their
// invitation, sees a QR code of a new TOTP secret, scans it and types the
// app's current code to confirm. The secret is sealed under the master key
// (bound to the employee); the code of an invitation enrolls once. From
// then on the authenticator's code is asked before a self-service password
// change, and an operator may reset the enrollment.

// enrollmentBinding binds an employee's sealed TOTP secret to them.
func enrollmentBinding(employeeID int64) string {
	return "enrollment:" + strconv.FormatInt(employeeID, 10)
}

// EnrollmentStart is what the person sees after entering their code: the
// QR code's URI, and the secret itself for an app that cannot scan (the
// only moment it is shown; it is never logged).
type EnrollmentStart struct {
	Employee int64
	Email    string
	Name     string
	Issuer   string
	URI      string
	Secret   enroll.Secret
}

// invitationFor finds the usable invitation of a typed enrollment code: it
// says clearly why a code is refused (not one, wrong, expired, used,
// replaced, its employee gone), and audits the refusal.
func (s *Service) invitationFor(ctx context.Context, tx *store.Tx, typed string) (*store.Invitation, *store.Employee, error) {
	code, err := enroll.ParseCode(typed)
	if err != nil {
		return nil, nil, err
	}
	pepper, err := s.codePepper(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	hash := enroll.Hash(pepper, code)
	in, err := tx.InvitationByCodeHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, enroll.ErrWrongCode
	}
	if err != nil {
		return nil, nil, err
	}
	e, err := tx.Employee(ctx, in.EmployeeID)
	if err != nil {
		return in, nil, err
	}
	if e.Status != store.StatusActive {
		return in, e, fmt.Errorf("this enrollment code belongs to %s, who was removed: it no longer enrolls anyone", e.Email)
	}
	if err := enroll.CheckCode(enroll.CodeState{Hash: in.CodeHash, ExpiresAt: in.ExpiresAt, UsedAt: in.UsedAt, ReplacedAt: in.ReplacedAt}, code, pepper, tx.Now()); err != nil {
		return in, nil, err
	}
	return in, e, nil
}

// auditEnrollmentRefusal records a refused code or authenticator code
// (never the codes themselves).
func (s *Service) auditEnrollmentRefusal(ctx context.Context, a Actor, action string, in *store.Invitation, cause error) {
	target := "enrollment"
	if in != nil {
		target = employeeTarget(in.EmployeeID)
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.st.Update(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, a, action, target, store.OutcomeFailure, map[string]any{"error": cause.Error()})
	}); err != nil {
		s.log.Error("audit a refused enrollment", "err", err)
	}
}

// BeginEnrollment checks an invitation's enrollment code and makes a new
// authenticator secret for its employee, kept (sealed) until they confirm
// it with ConfirmEnrollment. Beginning again (the person closed the screen)
// replaces the secret shown before; the code stays usable until confirmed.
func (s *Service) BeginEnrollment(ctx context.Context, a Actor, code string) (EnrollmentStart, error) {
	var out EnrollmentStart
	if err := s.authorize(ctx, a, PermEnroll, "enrollment"); err != nil {
		return out, err
	}
	secret, err := enroll.NewSecret()
	if err != nil {
		return out, err
	}
	var refused *store.Invitation
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		in, e, err := s.invitationFor(ctx, tx, code)
		if err != nil {
			refused = in
			return err
		}
		mk, err := s.masterKey(ctx, tx)
		if err != nil {
			return err
		}
		sealed, err := mk.Seal(secret, enrollmentBinding(e.ID))
		if err != nil {
			return err
		}
		if err := tx.PutPendingEnrollment(ctx, e.ID, sealed, in.ID); err != nil {
			return err
		}
		out = EnrollmentStart{Employee: e.ID, Email: e.Email, Name: e.DisplayName, Issuer: s.cfg.Invitations.Organisation, Secret: secret}
		if out.URI, err = enroll.URI(out.Issuer, e.Email, secret); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "enrollment.begin", employeeTarget(e.ID), store.OutcomeSuccess, map[string]any{"invitation": in.ID})
	})
	if err != nil {
		s.auditEnrollmentRefusal(ctx, a, "enrollment.begin", refused, err)
		return EnrollmentStart{}, fmt.Errorf("enroll: %w", err)
	}
	return out, nil
}

// ConfirmEnrollment checks the authenticator's code against the secret
// BeginEnrollment showed for this enrollment code: the secret becomes the
// employee's (replacing an earlier one), the invitation is used, and the
// code's time step may not be used again.
func (s *Service) ConfirmEnrollment(ctx context.Context, a Actor, code, totp string) (EmployeeView, error) {
	if err := s.authorize(ctx, a, PermEnroll, "enrollment"); err != nil {
		return EmployeeView{}, err
	}
	var ev EmployeeView
	var refused *store.Invitation
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		in, e, err := s.invitationFor(ctx, tx, code)
		if err != nil {
			refused = in
			return err
		}
		refused = in
		en, err := tx.Enrollment(ctx, e.ID)
		if errors.Is(err, store.ErrNotFound) || err == nil && (en.PendingSealed == nil || en.PendingInvitation == nil || *en.PendingInvitation != in.ID) {
			return errors.New("no QR code was shown for this enrollment code yet: enter the code again to see it")
		}
		if err != nil {
			return err
		}
		mk, err := s.masterKey(ctx, tx)
		if err != nil {
			return err
		}
		secret, err := mk.Open(en.PendingSealed, enrollmentBinding(e.ID))
		if err != nil {
			return fmt.Errorf("open the new authenticator secret: %w", err)
		}
		defer clear(secret)
		step, err := enroll.VerifyTOTP(secret, totp, tx.Now(), 0)
		if err != nil {
			return err
		}
		if err := tx.ConfirmEnrollment(ctx, e.ID, step); err != nil {
			return err
		}
		if err := tx.UseInvitation(ctx, in.ID); err != nil {
			return err
		}
		ev = viewEmployee(e)
		return s.audit(ctx, tx, a, "enrollment.confirm", employeeTarget(e.ID), store.OutcomeSuccess, map[string]any{"invitation": in.ID, "email": e.Email})
	})
	if err != nil {
		s.auditEnrollmentRefusal(ctx, a, "enrollment.confirm", refused, err)
		return EmployeeView{}, fmt.Errorf("enroll: %w", err)
	}
	s.publish(DataChanged{What: ChangedEmployees | ChangedAudit})
	return ev, nil
}

// ErrNeedAuthenticator: the person has an authenticator; its code is asked.
var ErrNeedAuthenticator = errors.New("you enrolled an authenticator app: enter the 6-digit code it shows now")

// checkAuthenticator asks an enrolled employee for their authenticator's
// current code (nothing for one who has none): a code is taken once, and a
// refusal is audited.
func (s *Service) checkAuthenticator(ctx context.Context, a Actor, employeeID int64, totp, target string) error {
	var cause error
	var failed int
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		en, err := tx.Enrollment(ctx, employeeID)
		if errors.Is(err, store.ErrNotFound) || err == nil && en.SecretSealed == nil {
			return nil
		}
		if err != nil {
			return err
		}
		if en.LockedUntil != nil && tx.Now().Before(*en.LockedUntil) {
			cause = fmt.Errorf("%w: too many wrong codes in a row; try again after %s, or ask the helpdesk", ErrAuthenticatorLocked, en.LockedUntil.Local().Format("15:04"))
			return cause
		}
		failed = en.FailedAttempts
		if totp == "" {
			cause = ErrNeedAuthenticator
			return cause
		}
		mk, err := s.masterKey(ctx, tx)
		if err != nil {
			return err
		}
		secret, err := mk.Open(en.SecretSealed, enrollmentBinding(employeeID))
		if err != nil {
			return fmt.Errorf("open the authenticator secret: %w", err)
		}
		defer clear(secret)
		step, err := enroll.VerifyTOTP(secret, totp, tx.Now(), en.LastStep)
		if err != nil {
			cause = err
			return err
		}
		if err := tx.UseStep(ctx, employeeID, step); errors.Is(err, store.ErrTOTPStepUsed) {
			cause = enroll.ErrReusedTOTP
			return cause
		} else if err != nil {
			return err
		}
		return nil
	})
	if cause != nil && !errors.Is(cause, ErrNeedAuthenticator) {
		// A wrong code counts (a locked authenticator's refusal does not
		// lengthen the lock); past authenticatorTries in a row, the
		// authenticator is locked for a while that doubles each time.
		ctx := context.WithoutCancel(ctx)
		wrong := !errors.Is(cause, ErrAuthenticatorLocked)
		if aerr := s.st.Update(ctx, func(tx *store.Tx) error {
			if wrong {
				if err := tx.FailedCode(ctx, employeeID, authenticatorLock(failed+1, tx.Now())); err != nil {
					return err
				}
			}
			return s.audit(ctx, tx, a, "enrollment.verify", target, store.OutcomeFailure, map[string]any{"employee": employeeID, "error": cause.Error()})
		}); aerr != nil {
			s.log.Error("audit a refused authenticator code", "err", aerr)
		}
	}
	return err
}

// ErrAuthenticatorLocked: too many wrong authenticator codes in a row.
var ErrAuthenticatorLocked = errors.New("the authenticator is locked")

// authenticatorTries is how many wrong codes in a row are let pass before
// the authenticator locks.
const authenticatorTries = 5

// authenticatorLock decides until when an authenticator is locked after
// the n-th wrong code in a row (nil: not locked): 1 minute after the 5th,
// doubling with each further one, at most a day.
func authenticatorLock(n int, now time.Time) *time.Time {
	if n < authenticatorTries {
		return nil
	}
	d := time.Minute
	for i := authenticatorTries; i < n && d < 24*time.Hour; i++ {
		d *= 2
	}
	until := now.Add(min(d, 24*time.Hour))
	return &until
}

// ResetEnrollment forgets the employee's authenticator (and a secret
// waiting for confirmation): a self-service change no longer asks for its
// code, and the person enrolls again with a new invitation.
func (s *Service) ResetEnrollment(ctx context.Context, a Actor, idOrEmail string) (EmployeeView, error) {
	if err := s.authorize(ctx, a, PermEnrollmentReset, "employee:"+idOrEmail); err != nil {
		return EmployeeView{}, err
	}
	var ev EmployeeView
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		e, err := s.lookupEmployee(ctx, tx, idOrEmail)
		if err != nil {
			return err
		}
		had, err := tx.DeleteEnrollment(ctx, e.ID)
		if err != nil {
			return err
		}
		if !had {
			return fmt.Errorf("%s has no authenticator enrolled: nothing to reset", e.Email)
		}
		ev = viewEmployee(e)
		return s.audit(ctx, tx, a, "enrollment.reset", employeeTarget(e.ID), store.OutcomeSuccess, map[string]any{"email": e.Email})
	})
	if err != nil {
		return EmployeeView{}, fmt.Errorf("reset the enrollment: %w", err)
	}
	s.publish(DataChanged{What: ChangedEmployees | ChangedAudit})
	return ev, nil
}
