package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Invitation is an invitation to enroll an authenticator: its code is kept
// only as a keyed hash.
type Invitation struct {
	ID         int64
	EmployeeID int64
	Email      string
	CodeHash   []byte
	Actor      string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
	ReplacedAt *time.Time
}

// InvitationView is an employee's newest invitation with its mail's state
// and the employee's enrollment (the Invitations view, the details).
type InvitationView struct {
	Invitation
	DisplayName string
	// The invitation's newest message ("" state: none).
	MailState     string
	Attempts      int
	LastError     string
	NextAttemptAt *time.Time
	SentAt        *time.Time
	// EnrolledAt is when the employee's authenticator was confirmed (nil:
	// not enrolled).
	EnrolledAt *time.Time
}

// Outbox states.
const (
	MailPending   = "pending"   // to be sent (again) at next_attempt_at
	MailSent      = "sent"      // the server accepted it
	MailFailed    = "failed"    // given up: refused for good, or too many attempts
	MailCancelled = "cancelled" // its invitation was replaced before it went
)

// OutboxMessage is a message decided in a transaction, sent later.
type OutboxMessage struct {
	ID            int64
	Kind          string
	InvitationID  *int64
	Recipient     string
	PayloadSealed []byte // nil once sent, failed or cancelled
	State         string
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	MessageID     string
	CreatedAt     time.Time
	SentAt        *time.Time
}

// Enrollment is an employee's authenticator (TOTP) secret, sealed.
type Enrollment struct {
	EmployeeID   int64
	SecretSealed []byte // the confirmed secret; nil: none yet
	LastStep     int64  // the newest time step used
	ConfirmedAt  *time.Time
	// A secret shown to the person and not yet confirmed with a code.
	PendingSealed     []byte
	PendingAt         *time.Time
	PendingInvitation *int64
	// Wrong codes in a row, and until when the authenticator is locked.
	FailedAttempts int
	LockedUntil    *time.Time
}

// ErrTOTPStepUsed: another code of the same step or a later one was taken
// meanwhile.
var ErrTOTPStepUsed = errors.New("an authenticator code of this time or a later one was used already")

const invitationCols = `i.id, i.employee_id, i.email, i.code_hash, i.actor, i.created_at, i.expires_at, i.used_at, i.replaced_at`

func scanInvitation(sc interface{ Scan(...any) error }, extra ...any) (Invitation, error) {
	var in Invitation
	var created, expires int64
	var used, replaced sql.NullInt64
	dest := []any{&in.ID, &in.EmployeeID, &in.Email, &in.CodeHash, &in.Actor, &created, &expires, &used, &replaced}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return in, err
	}
	in.CreatedAt, in.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	in.UsedAt, in.ReplacedAt = fromNanos(used), fromNanos(replaced)
	return in, nil
}

// InsertInvitation records a new invitation (and sets its ID). The
// employee must have no live one (replace it first).
func (tx *Tx) InsertInvitation(ctx context.Context, in *Invitation) error {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO invitations (employee_id, email, code_hash, actor, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		in.EmployeeID, in.Email, in.CodeHash, in.Actor, nanos(in.CreatedAt), nanos(in.ExpiresAt))
	if err != nil {
		return fmt.Errorf("record the invitation of employee %d: %w", in.EmployeeID, err)
	}
	in.ID, err = res.LastInsertId()
	return err
}

// EverInvited reports which of the employees have had an invitation, live
// or not (a query per 500).
func (tx *Tx) EverInvited(ctx context.Context, employeeIDs []int64) (map[int64]bool, error) {
	return tx.idSet(ctx, `SELECT DISTINCT employee_id FROM invitations WHERE employee_id IN (%s)`, employeeIDs)
}

// HoldingKeys reports which of the employees hold a key that is in
// service or on its way to them (reserved, active, locked or suspended).
func (tx *Tx) HoldingKeys(ctx context.Context, employeeIDs []int64) (map[int64]bool, error) {
	return tx.idSet(ctx, `SELECT DISTINCT employee_id FROM keys WHERE employee_id IN (%s) AND status IN `+liveKeyStatuses, employeeIDs)
}

// idSet runs query (whose %s takes a list of ids) over ids in parts, and
// collects the first column.
func (tx *Tx) idSet(ctx context.Context, query string, ids []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := tx.tx.QueryContext(ctx, fmt.Sprintf(query, "?"+strings.Repeat(",?", len(part)-1)), args...)
		if err != nil {
			return nil, fmt.Errorf("look up employees: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up employees: %w", err)
			}
			out[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LiveInvitation is the employee's invitation that is neither used nor
// replaced (ErrNotFound, wrapped, when there is none).
func (tx *Tx) LiveInvitation(ctx context.Context, employeeID int64) (*Invitation, error) {
	row := tx.tx.QueryRowContext(ctx, `SELECT `+invitationCols+` FROM invitations i WHERE i.employee_id = ? AND i.used_at IS NULL AND i.replaced_at IS NULL`, employeeID)
	in, err := scanInvitation(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("the live invitation of employee %d: %w", employeeID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the invitation of employee %d: %w", employeeID, err)
	}
	return &in, nil
}

// InvitationByCodeHash finds the invitation whose code has this hash
// (ErrNotFound, wrapped, when none has).
func (tx *Tx) InvitationByCodeHash(ctx context.Context, hash []byte) (*Invitation, error) {
	row := tx.tx.QueryRowContext(ctx, `SELECT `+invitationCols+` FROM invitations i WHERE i.code_hash = ?`, hash)
	in, err := scanInvitation(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("invitation: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read an invitation: %w", err)
	}
	return &in, nil
}

// ReplaceInvitation marks the employee's live invitation replaced and
// cancels its messages not sent yet (their codes are cleared). It returns
// the replaced invitation's ID (0: there was none).
func (tx *Tx) ReplaceInvitation(ctx context.Context, employeeID int64) (int64, error) {
	in, err := tx.LiveInvitation(ctx, employeeID)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE invitations SET replaced_at = ? WHERE id = ?`, nanos(tx.now), in.ID); err != nil {
		return 0, fmt.Errorf("replace the invitation of employee %d: %w", employeeID, err)
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE outbox SET state = ?, payload_sealed = NULL WHERE invitation_id = ? AND state = ?`, MailCancelled, in.ID, MailPending); err != nil {
		return 0, fmt.Errorf("cancel the mail of invitation %d: %w", in.ID, err)
	}
	return in.ID, nil
}

// EndInvitations replaces the live invitations of employees who left and
// cancels their mail not sent yet (their codes are cleared): a query per
// 500 employees.
func (tx *Tx) EndInvitations(ctx context.Context, employeeIDs []int64) error {
	for start := 0; start < len(employeeIDs); start += 500 {
		part := employeeIDs[start:min(start+500, len(employeeIDs))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		in := "?" + strings.Repeat(",?", len(part)-1)
		if _, err := tx.tx.ExecContext(ctx, `UPDATE outbox SET state = ?, payload_sealed = NULL, last_error = 'the person left'
			WHERE state = ? AND invitation_id IN (SELECT id FROM invitations WHERE employee_id IN (`+in+`))`, append([]any{MailCancelled, MailPending}, args...)...); err != nil {
			return fmt.Errorf("cancel the mail of leavers: %w", err)
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE invitations SET replaced_at = ? WHERE used_at IS NULL AND replaced_at IS NULL AND employee_id IN (`+in+`)`,
			append([]any{nanos(tx.now)}, args...)...); err != nil {
			return fmt.Errorf("end the invitations of leavers: %w", err)
		}
	}
	return nil
}

// UseInvitation marks the invitation used (its code enrolled).
func (tx *Tx) UseInvitation(ctx context.Context, id int64) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE invitations SET used_at = ? WHERE id = ? AND used_at IS NULL AND replaced_at IS NULL`, nanos(tx.now), id)
	if err != nil {
		return fmt.Errorf("mark invitation %d used: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("mark invitation %d used: it was used or replaced meanwhile", id)
	}
	return nil
}

// invitationViews is each employee's newest invitation (one query), with
// its newest message and the enrollment.
func invitationViews(ctx context.Context, q querier, where string, args ...any) ([]InvitationView, error) {
	return queryAll(ctx, q, "invitations", `SELECT `+invitationCols+`, e.display_name,
		COALESCE(o.state, ''), COALESCE(o.attempts, 0), COALESCE(o.last_error, ''), o.next_attempt_at, o.sent_at, n.confirmed_at
		FROM invitations i
		JOIN employees e ON e.id = i.employee_id
		LEFT JOIN outbox o ON o.id = (SELECT MAX(id) FROM outbox WHERE invitation_id = i.id)
		LEFT JOIN enrollments n ON n.employee_id = i.employee_id
		WHERE i.id = (SELECT MAX(id) FROM invitations WHERE employee_id = i.employee_id) `+where+`
		ORDER BY i.created_at DESC, i.id DESC`, func(sc interface{ Scan(...any) error }) (InvitationView, error) {
		var v InvitationView
		var next, sent, enrolled sql.NullInt64
		in, err := scanInvitation(sc, &v.DisplayName, &v.MailState, &v.Attempts, &v.LastError, &next, &sent, &enrolled)
		v.Invitation, v.NextAttemptAt, v.SentAt, v.EnrolledAt = in, fromNanos(next), fromNanos(sent), fromNanos(enrolled)
		return v, err
	}, args...)
}

// Invitations lists each invited employee's newest invitation, newest
// first.
func (s *Store) Invitations(ctx context.Context) ([]InvitationView, error) {
	return invitationViews(ctx, s.db, "")
}

// InvitationOf is the employee's newest invitation (ErrNotFound, wrapped,
// when they have none).
func (s *Store) InvitationOf(ctx context.Context, employeeID int64) (*InvitationView, error) {
	vs, err := invitationViews(ctx, s.db, `AND i.employee_id = ?`, employeeID)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("the invitation of employee %d: %w", employeeID, ErrNotFound)
	}
	return &vs[0], nil
}

const outboxCols = `id, kind, invitation_id, recipient, payload_sealed, state, attempts, next_attempt_at, last_error, message_id, created_at, sent_at`

func scanMessage(sc interface{ Scan(...any) error }) (OutboxMessage, error) {
	var m OutboxMessage
	var inv, sent sql.NullInt64
	var next, created int64
	if err := sc.Scan(&m.ID, &m.Kind, &inv, &m.Recipient, &m.PayloadSealed, &m.State, &m.Attempts, &next, &m.LastError, &m.MessageID, &created, &sent); err != nil {
		return m, err
	}
	if inv.Valid {
		id := inv.Int64
		m.InvitationID = &id
	}
	m.NextAttemptAt, m.CreatedAt, m.SentAt = time.Unix(0, next).UTC(), time.Unix(0, created).UTC(), fromNanos(sent)
	return m, nil
}

func queryMessages(ctx context.Context, q querier, where string, args ...any) ([]OutboxMessage, error) {
	return queryAll(ctx, q, "the outbox", `SELECT `+outboxCols+` FROM outbox `+where, scanMessage, args...)
}

// Enqueue records a message to send (state pending; sets its ID).
func (tx *Tx) Enqueue(ctx context.Context, m *OutboxMessage) error {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO outbox (kind, invitation_id, recipient, payload_sealed, state, next_attempt_at, message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		m.Kind, m.InvitationID, m.Recipient, nullBytes(m.PayloadSealed), MailPending, nanos(m.NextAttemptAt), m.MessageID, nanos(tx.now))
	if err != nil {
		return fmt.Errorf("put a message to %s in the outbox: %w", m.Recipient, err)
	}
	m.ID, err = res.LastInsertId()
	m.State, m.CreatedAt = MailPending, tx.now
	return err
}

// DueMessages are the pending messages whose time has come, oldest first.
func (tx *Tx) DueMessages(ctx context.Context, limit int) ([]OutboxMessage, error) {
	return queryMessages(ctx, tx.tx, `WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, MailPending, nanos(tx.now), limit)
}

// PendingMail counts the messages waiting to be sent and says when the
// next one is due (nil: none), in one query.
func (s *Store) PendingMail(ctx context.Context) (int, *time.Time, error) {
	var count int
	var next sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(next_attempt_at) FROM outbox WHERE state = ?`, MailPending).Scan(&count, &next); err != nil {
		return 0, nil, fmt.Errorf("read the outbox: %w", err)
	}
	return count, fromNanos(next), nil
}

// MailState is the state of the invitation's newest message ("" when it
// has none).
func (tx *Tx) MailState(ctx context.Context, invitationID int64) (string, error) {
	var state string
	err := tx.tx.QueryRowContext(ctx, `SELECT state FROM outbox WHERE invitation_id = ? ORDER BY id DESC LIMIT 1`, invitationID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the mail of invitation %d: %w", invitationID, err)
	}
	return state, nil
}

// StartAttempt counts an attempt to send the message and sets when the
// next one is due, if this one never reports back (the process dies while
// sending). It fails when the message is no longer pending, or another
// process counted an attempt meanwhile.
func (tx *Tx) StartAttempt(ctx context.Context, m OutboxMessage, retryAt time.Time) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ? AND state = ? AND attempts = ?`,
		nanos(retryAt), m.ID, MailPending, m.Attempts)
	if err != nil {
		return fmt.Errorf("count an attempt to send message %d: %w", m.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("message %d: %w", m.ID, ErrMessageTaken)
	}
	return nil
}

// ErrMessageTaken: another process is sending the message, or it was sent
// or cancelled meanwhile.
var ErrMessageTaken = errors.New("another process took it, or it is no longer pending")

// MessageSent records that the server accepted the message; its payload is
// cleared.
func (tx *Tx) MessageSent(ctx context.Context, id int64) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE outbox SET state = ?, payload_sealed = NULL, last_error = '', sent_at = ? WHERE id = ? AND state = ?`, MailSent, nanos(tx.now), id, MailPending)
	if err != nil {
		return fmt.Errorf("record message %d sent: %w", id, err)
	}
	return nil
}

// MessageNotSent records why an attempt failed: the message is tried again
// at retryAt, or, when giveUp, never (its payload is cleared).
func (tx *Tx) MessageNotSent(ctx context.Context, id int64, why string, retryAt time.Time, giveUp bool) error {
	q := `UPDATE outbox SET last_error = ?, next_attempt_at = ? WHERE id = ? AND state = ?`
	args := []any{why, nanos(retryAt), id, MailPending}
	if giveUp {
		q = `UPDATE outbox SET last_error = ?, state = ?, payload_sealed = NULL WHERE id = ? AND state = ?`
		args = []any{why, MailFailed, id, MailPending}
	}
	if _, err := tx.tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("record the failed send of message %d: %w", id, err)
	}
	return nil
}

// CancelMessage drops a message that must not go (its invitation can no
// longer be used); why is kept as its last error.
func (tx *Tx) CancelMessage(ctx context.Context, id int64, why string) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE outbox SET state = ?, payload_sealed = NULL, last_error = ? WHERE id = ? AND state = ?`, MailCancelled, why, id, MailPending); err != nil {
		return fmt.Errorf("cancel message %d: %w", id, err)
	}
	return nil
}

// SealedMessages are the messages that still hold a sealed payload.
func (tx *Tx) SealedMessages(ctx context.Context) ([]OutboxMessage, error) {
	return queryMessages(ctx, tx.tx, `WHERE payload_sealed IS NOT NULL ORDER BY id`)
}

// ResealMessage replaces a message's sealed payload (a new master key).
func (tx *Tx) ResealMessage(ctx context.Context, id int64, sealed []byte) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE outbox SET payload_sealed = ? WHERE id = ?`, sealed, id); err != nil {
		return fmt.Errorf("re-seal message %d: %w", id, err)
	}
	return nil
}

const enrollmentCols = `employee_id, secret_sealed, last_step, confirmed_at, pending_sealed, pending_at, pending_invitation, failed_attempts, locked_until`

func scanEnrollment(sc interface{ Scan(...any) error }) (Enrollment, error) {
	var e Enrollment
	var confirmed, pendingAt, inv, locked sql.NullInt64
	if err := sc.Scan(&e.EmployeeID, &e.SecretSealed, &e.LastStep, &confirmed, &e.PendingSealed, &pendingAt, &inv, &e.FailedAttempts, &locked); err != nil {
		return e, err
	}
	e.ConfirmedAt, e.PendingAt, e.LockedUntil = fromNanos(confirmed), fromNanos(pendingAt), fromNanos(locked)
	if inv.Valid {
		id := inv.Int64
		e.PendingInvitation = &id
	}
	return e, nil
}

func enrollment(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, employeeID int64) (*Enrollment, error) {
	e, err := scanEnrollment(q.QueryRowContext(ctx, `SELECT `+enrollmentCols+` FROM enrollments WHERE employee_id = ?`, employeeID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("the enrollment of employee %d: %w", employeeID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the enrollment of employee %d: %w", employeeID, err)
	}
	return &e, nil
}

// Enrollment reads the employee's enrollment (ErrNotFound, wrapped, when
// there is none).
func (tx *Tx) Enrollment(ctx context.Context, employeeID int64) (*Enrollment, error) {
	return enrollment(ctx, tx.tx, employeeID)
}

// Enrollment reads the employee's enrollment outside a transaction.
func (s *Store) Enrollment(ctx context.Context, employeeID int64) (*Enrollment, error) {
	return enrollment(ctx, s.db, employeeID)
}

// PutPendingEnrollment keeps a secret shown to the employee until they
// confirm it (replacing one shown before); a confirmed secret stays in
// force meanwhile.
func (tx *Tx) PutPendingEnrollment(ctx context.Context, employeeID int64, sealed []byte, invitationID int64) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO enrollments (employee_id, pending_sealed, pending_at, pending_invitation) VALUES (?, ?, ?, ?)
		ON CONFLICT (employee_id) DO UPDATE SET pending_sealed = excluded.pending_sealed, pending_at = excluded.pending_at, pending_invitation = excluded.pending_invitation`,
		employeeID, sealed, nanos(tx.now), invitationID)
	if err != nil {
		return fmt.Errorf("keep the new authenticator secret of employee %d: %w", employeeID, err)
	}
	return nil
}

// ConfirmEnrollment makes the pending secret the employee's secret, with
// step as the newest step used.
func (tx *Tx) ConfirmEnrollment(ctx context.Context, employeeID, step int64) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE enrollments SET secret_sealed = pending_sealed, last_step = ?, confirmed_at = ?,
		pending_sealed = NULL, pending_at = NULL, pending_invitation = NULL WHERE employee_id = ? AND pending_sealed IS NOT NULL`, step, nanos(tx.now), employeeID)
	if err != nil {
		return fmt.Errorf("confirm the authenticator of employee %d: %w", employeeID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("confirm the authenticator of employee %d: no secret waits for confirmation", employeeID)
	}
	return nil
}

// UseStep records step as the newest one used, if no code of it or a later
// step was used meanwhile (ErrTOTPStepUsed).
func (tx *Tx) UseStep(ctx context.Context, employeeID, step int64) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE enrollments SET last_step = ?, failed_attempts = 0, locked_until = NULL WHERE employee_id = ? AND last_step < ? AND secret_sealed IS NOT NULL`, step, employeeID, step)
	if err != nil {
		return fmt.Errorf("record the authenticator code of employee %d: %w", employeeID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrTOTPStepUsed
	}
	return nil
}

// FailedCode counts a wrong authenticator code and sets until when the
// authenticator is locked (nil: not locked).
func (tx *Tx) FailedCode(ctx context.Context, employeeID int64, lockedUntil *time.Time) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE enrollments SET failed_attempts = failed_attempts + 1, locked_until = ? WHERE employee_id = ?`, nullNanos(lockedUntil), employeeID); err != nil {
		return fmt.Errorf("count a wrong authenticator code of employee %d: %w", employeeID, err)
	}
	return nil
}

// DeleteEnrollment forgets the employee's authenticator (and any secret
// waiting for confirmation). It reports whether there was one.
func (tx *Tx) DeleteEnrollment(ctx context.Context, employeeID int64) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM enrollments WHERE employee_id = ?`, employeeID)
	if err != nil {
		return false, fmt.Errorf("reset the authenticator of employee %d: %w", employeeID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// SealedEnrollments are the enrollments that hold a sealed secret.
func (tx *Tx) SealedEnrollments(ctx context.Context) ([]Enrollment, error) {
	return queryAll(ctx, tx.tx, "the enrollments", `SELECT `+enrollmentCols+` FROM enrollments WHERE secret_sealed IS NOT NULL OR pending_sealed IS NOT NULL ORDER BY employee_id`, scanEnrollment)
}

// ResealEnrollment replaces an enrollment's sealed secrets (a new master
// key; nil: none).
func (tx *Tx) ResealEnrollment(ctx context.Context, employeeID int64, secret, pending []byte) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE enrollments SET secret_sealed = ?, pending_sealed = ? WHERE employee_id = ?`, nullBytes(secret), nullBytes(pending), employeeID); err != nil {
		return fmt.Errorf("re-seal the authenticator of employee %d: %w", employeeID, err)
	}
	return nil
}

// InvitationByID reads one invitation (ErrNotFound, wrapped, when there is
// none).
func (tx *Tx) InvitationByID(ctx context.Context, id int64) (*Invitation, error) {
	in, err := scanInvitation(tx.tx.QueryRowContext(ctx, `SELECT `+invitationCols+` FROM invitations i WHERE i.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("invitation %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read invitation %d: %w", id, err)
	}
	return &in, nil
}
