package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Employee statuses and sources.
const (
	StatusActive  = "active"
	StatusRemoved = "removed"
	SourceAD      = "ad"
	SourceManual  = "manual"
)

// Reasons an account is no longer a member.
const (
	LeftGroup    = "left-group"
	LeftDisabled = "disabled"
	LeftDeleted  = "deleted"
)

// Employee flags, derived from the employee's accounts.
const (
	FlagNoEmail  = "no-email"
	FlagConflict = "conflict"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Employee is a person; it holds zero or more directory accounts.
type Employee struct {
	ID          int64
	EmailNorm   string // "" = no email
	Email       string
	DisplayName string
	Department  string
	Status      string
	Source      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	RemovedAt   *time.Time
	Accounts    []Account // filled by the listing queries
}

// Flags are the employee's warnings for an admin: no email, or two accounts
// of one domain sharing the email (a conflict).
func (e *Employee) Flags() []string {
	flags := []string{}
	if e.EmailNorm == "" {
		flags = append(flags, FlagNoEmail)
	}
	perDomain := map[string]int{}
	for _, a := range e.Accounts {
		if a.LeftReason == "" {
			perDomain[a.Domain]++
		}
	}
	for _, n := range perDomain {
		if n > 1 {
			flags = append(flags, FlagConflict)
			break
		}
	}
	return flags
}

// Account is one directory account, identified by domain and objectGUID.
type Account struct {
	ID               int64
	Domain           string
	ObjectGUID       string
	EmployeeID       int64
	ObjectSID        string
	SAMAccountName   string
	UPN              string
	Mail             string
	GivenName        string
	SN               string
	DisplayName      string
	Department       string
	Title            string
	Company          string
	Telephone        string
	DN               string
	Enabled          bool
	PwdLastSet       *time.Time
	USNChanged       int64
	InSyncGroup      bool
	PasswordRotation bool
	LeftReason       string // "" while a member
	LeftAt           *time.Time
	FirstSeen        time.Time
	UpdatedAt        time.Time
}

const employeeCols = `id, COALESCE(email_norm, ''), COALESCE(email, ''), display_name, department, status, source, created_at, updated_at, removed_at`

// employeeColsE is employeeCols of the table named e.
const employeeColsE = `e.id, COALESCE(e.email_norm, ''), COALESCE(e.email, ''), e.display_name, e.department, e.status, e.source, e.created_at, e.updated_at, e.removed_at`

func scanEmployee(sc interface{ Scan(...any) error }) (Employee, error) { return scanEmployeeWith(sc) }

// scanEmployeeWith scans employeeCols followed by the extra columns.
func scanEmployeeWith(sc interface{ Scan(...any) error }, extra ...any) (Employee, error) {
	var e Employee
	var created, updated int64
	var removed sql.NullInt64
	if err := sc.Scan(append([]any{&e.ID, &e.EmailNorm, &e.Email, &e.DisplayName, &e.Department, &e.Status, &e.Source, &created, &updated, &removed}, extra...)...); err != nil {
		return e, err
	}
	e.CreatedAt = time.Unix(0, created).UTC()
	e.UpdatedAt = time.Unix(0, updated).UTC()
	e.RemovedAt = fromNanos(removed)
	return e, nil
}

const accountCols = `id, domain, object_guid, employee_id, object_sid, sam_account_name, upn, mail, given_name, sn, display_name, department, title, company, telephone, dn, enabled, pwd_last_set, usn_changed, in_sync_group, password_rotation, COALESCE(left_reason, ''), left_at, first_seen, updated_at`

func scanAccount(sc interface{ Scan(...any) error }) (Account, error) { return scanAccountWith(sc) }

// scanAccountWith scans accountCols followed by the extra columns.
func scanAccountWith(sc interface{ Scan(...any) error }, extra ...any) (Account, error) {
	var a Account
	var pwd, leftAt sql.NullInt64
	var first, updated int64
	dest := []any{&a.ID, &a.Domain, &a.ObjectGUID, &a.EmployeeID, &a.ObjectSID, &a.SAMAccountName, &a.UPN, &a.Mail, &a.GivenName, &a.SN, &a.DisplayName, &a.Department, &a.Title, &a.Company, &a.Telephone, &a.DN, &a.Enabled, &pwd, &a.USNChanged, &a.InSyncGroup, &a.PasswordRotation, &a.LeftReason, &leftAt, &first, &updated}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return a, err
	}
	a.PwdLastSet = fromNanos(pwd)
	a.LeftAt = fromNanos(leftAt)
	a.FirstSeen = time.Unix(0, first).UTC()
	a.UpdatedAt = time.Unix(0, updated).UTC()
	return a, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryEmployees(ctx context.Context, q querier, where string, args ...any) ([]Employee, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+employeeCols+` FROM employees `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read employees: %w", err)
	}
	defer rows.Close()
	var out []Employee
	for rows.Next() {
		e, err := scanEmployee(rows)
		if err != nil {
			return nil, fmt.Errorf("read employee: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func queryAccounts(ctx context.Context, q querier, where string, args ...any) ([]Account, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("read account: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// LoadEmployees reads every employee (without accounts) inside the
// transaction, in one query.
func (tx *Tx) LoadEmployees(ctx context.Context) ([]Employee, error) {
	return queryEmployees(ctx, tx.tx, `ORDER BY id`)
}

// LoadAccounts reads every account of every domain inside the transaction, in
// one query.
func (tx *Tx) LoadAccounts(ctx context.Context) ([]Account, error) {
	return queryAccounts(ctx, tx.tx, `ORDER BY id`)
}

// InsertEmployee adds an employee and sets its ID.
func (tx *Tx) InsertEmployee(ctx context.Context, e *Employee) error {
	st, err := tx.stmt(ctx, `INSERT INTO employees(email_norm, email, display_name, department, status, source, created_at, updated_at, removed_at) VALUES (?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("prepare employee insert: %w", err)
	}
	e.CreatedAt, e.UpdatedAt = tx.now, tx.now
	res, err := st.ExecContext(ctx, nullString(e.EmailNorm), nullString(e.Email), e.DisplayName, e.Department, e.Status, e.Source, nanos(tx.now), nanos(tx.now), nullNanos(e.RemovedAt))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("add employee %s: an employee with this email already exists", e.Email)
		}
		return fmt.Errorf("add employee %s: %w", e.Email, err)
	}
	e.ID, err = res.LastInsertId()
	return err
}

// ClearEmployeeEmails sets the merge key (email_norm) of the given employees
// to NULL, so that
// a batch of updates can swap or move emails without tripping the unique
// index halfway.
func (tx *Tx) ClearEmployeeEmails(ctx context.Context, ids []int64) error {
	st, err := tx.stmt(ctx, `UPDATE employees SET email_norm = NULL WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("prepare email clear: %w", err)
	}
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, id); err != nil {
			return fmt.Errorf("clear email of employee %d: %w", id, err)
		}
	}
	return nil
}

// UpdateEmployee writes every field of an existing employee.
func (tx *Tx) UpdateEmployee(ctx context.Context, e *Employee) error {
	st, err := tx.stmt(ctx, `UPDATE employees SET email_norm = ?, email = ?, display_name = ?, department = ?, status = ?, source = ?, updated_at = ?, removed_at = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("prepare employee update: %w", err)
	}
	e.UpdatedAt = tx.now
	res, err := st.ExecContext(ctx, nullString(e.EmailNorm), nullString(e.Email), e.DisplayName, e.Department, e.Status, e.Source, nanos(tx.now), nullNanos(e.RemovedAt), e.ID)
	if err != nil {
		return fmt.Errorf("update employee %d: %w", e.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("update employee %d: %w", e.ID, ErrNotFound)
	}
	return nil
}

// InsertAccount adds an account and sets its ID.
func (tx *Tx) InsertAccount(ctx context.Context, a *Account) error {
	st, err := tx.stmt(ctx, `INSERT INTO accounts(domain, object_guid, employee_id, object_sid, sam_account_name, upn, mail, given_name, sn, display_name, department, title, company, telephone, dn, enabled, pwd_last_set, usn_changed, in_sync_group, password_rotation, left_reason, left_at, first_seen, updated_at, ad_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("prepare account insert: %w", err)
	}
	a.FirstSeen, a.UpdatedAt = tx.now, tx.now
	res, err := st.ExecContext(ctx, a.Domain, a.ObjectGUID, a.EmployeeID, a.ObjectSID, a.SAMAccountName, a.UPN, a.Mail, a.GivenName, a.SN, a.DisplayName, a.Department, a.Title, a.Company, a.Telephone, a.DN, boolInt(a.Enabled), nullNanos(a.PwdLastSet), a.USNChanged, boolInt(a.InSyncGroup), boolInt(a.PasswordRotation), nullString(a.LeftReason), nullNanos(a.LeftAt), nanos(tx.now), nanos(tx.now), a.ADHash())
	if err != nil {
		return fmt.Errorf("add account %s/%s: %w", a.Domain, a.ObjectGUID, err)
	}
	a.ID, err = res.LastInsertId()
	return err
}

// UpdateAccount writes every field of an existing account.
func (tx *Tx) UpdateAccount(ctx context.Context, a *Account) error {
	st, err := tx.stmt(ctx, `UPDATE accounts SET employee_id = ?, object_sid = ?, sam_account_name = ?, upn = ?, mail = ?, given_name = ?, sn = ?, display_name = ?, department = ?, title = ?, company = ?, telephone = ?, dn = ?, enabled = ?, pwd_last_set = ?, usn_changed = ?, in_sync_group = ?, password_rotation = ?, left_reason = ?, left_at = ?, updated_at = ?, ad_hash = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("prepare account update: %w", err)
	}
	a.UpdatedAt = tx.now
	res, err := st.ExecContext(ctx, a.EmployeeID, a.ObjectSID, a.SAMAccountName, a.UPN, a.Mail, a.GivenName, a.SN, a.DisplayName, a.Department, a.Title, a.Company, a.Telephone, a.DN, boolInt(a.Enabled), nullNanos(a.PwdLastSet), a.USNChanged, boolInt(a.InSyncGroup), boolInt(a.PasswordRotation), nullString(a.LeftReason), nullNanos(a.LeftAt), nanos(tx.now), a.ADHash(), a.ID)
	if err != nil {
		return fmt.Errorf("update account %s/%s: %w", a.Domain, a.ObjectGUID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("update account %d: %w", a.ID, ErrNotFound)
	}
	return nil
}

// EmployeeByEmail finds an employee by normalised email inside the
// transaction.
func (tx *Tx) EmployeeByEmail(ctx context.Context, emailNorm string) (*Employee, error) {
	es, err := queryEmployees(ctx, tx.tx, `WHERE email_norm = ?`, emailNorm)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, ErrNotFound
	}
	return &es[0], nil
}

// EmployeeAccounts reads the accounts of one employee inside the transaction.
func (tx *Tx) EmployeeAccounts(ctx context.Context, employeeID int64) ([]Account, error) {
	return queryAccounts(ctx, tx.tx, `WHERE employee_id = ? ORDER BY id`, employeeID)
}

// Employee returns one employee with its accounts.
func (s *Store) Employee(ctx context.Context, id int64) (*Employee, error) {
	return employee(ctx, s.db, id)
}

// Employee reads one employee with its accounts inside the transaction.
func (tx *Tx) Employee(ctx context.Context, id int64) (*Employee, error) {
	return employee(ctx, tx.tx, id)
}

func employee(ctx context.Context, q querier, id int64) (*Employee, error) {
	es, err := queryEmployees(ctx, q, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("employee %d: %w", id, ErrNotFound)
	}
	e := es[0]
	e.Accounts, err = queryAccounts(ctx, q, `WHERE employee_id = ? ORDER BY domain, id`, id)
	return &e, err
}

// Counts is a summary of the database's content.
type Counts struct {
	Employees        int            `json:"employees"`
	ActiveEmployees  int            `json:"active_employees"`
	Accounts         map[string]int `json:"accounts"` // members per domain
	AccountsLeft     map[string]int `json:"accounts_left"`
	ManualEmployees  int            `json:"manual_employees"`
	PasswordRotation int            `json:"password_rotation"`
}

// Counts reads the summary counts.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	c := Counts{Accounts: map[string]int{}, AccountsLeft: map[string]int{}}
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(status = 'active'), 0), COALESCE(SUM(source = 'manual'), 0) FROM employees`).Scan(&c.Employees, &c.ActiveEmployees, &c.ManualEmployees)
	if err != nil {
		return c, fmt.Errorf("count employees: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT domain, left_reason IS NULL, COUNT(*), SUM(password_rotation) FROM accounts GROUP BY domain, left_reason IS NULL`)
	if err != nil {
		return c, fmt.Errorf("count accounts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var member bool
		var n, pw int
		if err := rows.Scan(&d, &member, &n, &pw); err != nil {
			return c, fmt.Errorf("count accounts: %w", err)
		}
		if member {
			c.Accounts[d] += n
			c.PasswordRotation += pw
		} else {
			c.AccountsLeft[d] += n
		}
	}
	return c, rows.Err()
}

// EmployeeRow is an employee as the listing shows them: their accounts,
// their key in use, and what the rotation state of each account whose
// password KeyDesk manages needs.
type EmployeeRow struct {
	Employee
	// Key is the employee's key in use (nil: none).
	Key *Key
	// Managed are the employee's managed accounts (as ManagedAccounts
	// gives them), in the order of Accounts.
	Managed []ManagedAccount
}

// EachEmployee calls fn with every employee, their accounts, their key and
// their managed accounts' records, in the listing's order (by name). It
// reads three cursors in the same order in one snapshot and merges them
// row by row: memory stays constant whatever the number of employees.
func (s *Store) EachEmployee(ctx context.Context, fn func(*EmployeeRow) error) error {
	return s.eachEmployee(ctx, "1", nil, fn)
}

// EmployeeRow reads one employee as the listing gives them (see
// EachEmployee): the console reads the selected employee's details so.
func (s *Store) EmployeeRow(ctx context.Context, id int64) (*EmployeeRow, error) {
	var out *EmployeeRow
	err := s.eachEmployee(ctx, "e.id = ?", []any{id}, func(r *EmployeeRow) error {
		out = r
		return nil
	})
	if err == nil && out == nil {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("employee %d: %w", id, err)
	}
	return out, nil
}

// eachEmployee gives fn the employees for which the SQL condition where
// (on employees e, with its args) holds, as EachEmployee does.
func (s *Store) eachEmployee(ctx context.Context, where string, args []any, fn func(*EmployeeRow) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("read employees: %w", err)
	}
	defer tx.Rollback()
	const byName = ` ORDER BY e.display_name COLLATE NOCASE, e.id`
	erows, err := tx.QueryContext(ctx, `SELECT `+employeeColsE+`, k.id, COALESCE(k.serial, ''), COALESCE(k.status, ''), COALESCE(k.reason, '')
		FROM employees e LEFT JOIN keys k ON k.employee_id = e.id AND k.status IN `+liveKeyStatuses+` WHERE (`+where+`)`+byName, args...)
	if err != nil {
		return fmt.Errorf("read employees: %w", err)
	}
	defer erows.Close()
	// The accounts and the open changes in the same order as their
	// employees: each employee's come together, when the employee does.
	type account struct {
		Account
		managed     bool
		onKey, inAD *time.Time
	}
	accounts, err := openCursor(ctx, tx, "accounts", `SELECT `+accountColsA+`, `+managedSQL+`,
			CASE WHEN `+managedSQL+` THEN `+onKeySQL+` END, CASE WHEN `+managedSQL+` THEN `+inADSQL+` END
		FROM accounts a JOIN employees e ON e.id = a.employee_id
		LEFT JOIN keys k ON k.employee_id = e.id AND k.status IN `+liveKeyStatuses+` WHERE (`+where+`)`+byName+`, a.domain, a.id`, args,
		func(sc interface{ Scan(...any) error }) (account, error) {
			var r account
			var onKey, inAD sql.NullInt64
			var err error
			r.Account, err = scanAccountWith(sc, &r.managed, &onKey, &inAD)
			r.onKey, r.inAD = fromNanos(onKey), fromNanos(inAD)
			return r, err
		})
	if err != nil {
		return err
	}
	defer accounts.close()
	type change struct {
		PasswordChange
		employeeID int64
	}
	changes, err := openCursor(ctx, tx, "password changes", `SELECT `+prefixed("c.", changeCols)+`, e.id
		FROM password_changes c JOIN accounts a ON a.id = c.account_id JOIN employees e ON e.id = a.employee_id
		WHERE c.id = (SELECT MAX(id) FROM password_changes l WHERE l.account_id = c.account_id) AND c.step <> 'done' AND (`+where+`)`+byName+`, a.domain, a.id`, args,
		func(sc interface{ Scan(...any) error }) (change, error) {
			var r change
			var err error
			r.PasswordChange, err = scanChangeWith(sc, &r.employeeID)
			return r, err
		})
	if err != nil {
		return err
	}
	defer changes.close()
	for erows.Next() {
		var keyID sql.NullInt64
		var k Key
		e, err := scanEmployeeWith(erows, &keyID, &k.Serial, &k.Status, &k.Reason)
		if err != nil {
			return fmt.Errorf("read employee: %w", err)
		}
		row := EmployeeRow{Employee: e}
		if keyID.Valid {
			k.ID, k.EmployeeID = keyID.Int64, &e.ID
			row.Key = &k
		}
		var open []PasswordChange
		if err := changes.each(func(c *change) bool { return c.employeeID == e.ID }, func(c *change) {
			open = append(open, c.PasswordChange)
		}); err != nil {
			return err
		}
		if err := accounts.each(func(a *account) bool { return a.EmployeeID == e.ID }, func(a *account) {
			row.Accounts = append(row.Accounts, a.Account)
			if !a.managed {
				return
			}
			m := ManagedAccount{Account: a.Account, Email: e.Email, LastOnKey: a.onKey, LastInAD: a.inAD}
			if row.Key != nil {
				m.KeyID, m.KeySerial, m.KeyStatus = &row.Key.ID, row.Key.Serial, row.Key.Status
			}
			for i := range open {
				if open[i].AccountID == a.ID {
					m.Open = &open[i]
				}
			}
			row.Managed = append(row.Managed, m)
		}); err != nil {
			return err
		}
		if err := fn(&row); err != nil {
			return err
		}
	}
	if err := erows.Err(); err != nil {
		return fmt.Errorf("read employees: %w", err)
	}
	return nil
}

// cursor reads rows of one query ahead by one, so that rows that belong
// to the current item of another query (read in the same order) can be
// taken while they match.
type cursor[T any] struct {
	what string
	rows *sql.Rows
	scan func(interface{ Scan(...any) error }) (T, error)
	next *T
}

func openCursor[T any](ctx context.Context, tx *sql.Tx, what, query string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) (*cursor[T], error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return &cursor[T]{what: what, rows: rows, scan: scan}, nil
}

// each gives fn the rows, from the current one, for which match holds.
func (c *cursor[T]) each(match func(*T) bool, fn func(*T)) error {
	for {
		if c.next == nil {
			if !c.rows.Next() {
				if err := c.rows.Err(); err != nil {
					return fmt.Errorf("read %s: %w", c.what, err)
				}
				return nil
			}
			v, err := c.scan(c.rows)
			if err != nil {
				return fmt.Errorf("read %s: %w", c.what, err)
			}
			c.next = &v
		}
		if !match(c.next) {
			return nil
		}
		fn(c.next)
		c.next = nil
	}
}

func (c *cursor[T]) close() { c.rows.Close() }

// accountColsA is accountCols of the table named a.
const accountColsA = `a.id, a.domain, a.object_guid, a.employee_id, a.object_sid, a.sam_account_name, a.upn, a.mail, a.given_name, a.sn, a.display_name, a.department, a.title, a.company, a.telephone, a.dn, a.enabled, a.pwd_last_set, a.usn_changed, a.in_sync_group, a.password_rotation, COALESCE(a.left_reason, ''), a.left_at, a.first_seen, a.updated_at`

// Member is what a sync needs to know of each member of a domain without
// reading the account whole.
type Member struct {
	PasswordRotation bool
	ADHash           string // the account's ADHash when last written
	Enabled          bool
	// Current: not marked as left (a disabled account whose removal the
	// guard holds is current).
	Current bool
}

// DomainMembers gives the accounts of a domain that are in its sync group,
// by objectGUID.
func (s *Store) DomainMembers(ctx context.Context, domain string) (map[string]Member, error) {
	return domainMembers(ctx, s.db, domain)
}

// DomainMembers is Store.DomainMembers inside the transaction.
func (tx *Tx) DomainMembers(ctx context.Context, domain string) (map[string]Member, error) {
	return domainMembers(ctx, tx.tx, domain)
}

// MembersByGUID reads, as DomainMembers does, the members of domain with
// these objectGUIDs (those that are not members are not in the map).
func (s *Store) MembersByGUID(ctx context.Context, domain string, guids []string) (map[string]Member, error) {
	gj, err := json.Marshal(guids)
	if err != nil {
		return nil, fmt.Errorf("read members of %s: %w", domain, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT object_guid, password_rotation, ad_hash, enabled, left_reason IS NULL FROM accounts
		WHERE domain = ? AND in_sync_group = 1 AND object_guid IN (SELECT value FROM json_each(?))`, domain, string(gj))
	if err != nil {
		return nil, fmt.Errorf("read members of %s: %w", domain, err)
	}
	return scanMembers(rows, domain, len(guids))
}

func domainMembers(ctx context.Context, q interface {
	querier
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, domain string) (map[string]Member, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE domain = ? AND in_sync_group = 1`, domain).Scan(&n); err != nil {
		return nil, fmt.Errorf("count the members of %s: %w", domain, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT object_guid, password_rotation, ad_hash, enabled, left_reason IS NULL FROM accounts WHERE domain = ? AND in_sync_group = 1`, domain)
	if err != nil {
		return nil, fmt.Errorf("read the members of %s: %w", domain, err)
	}
	return scanMembers(rows, domain, n)
}

// scanMembers reads the rows of a members query (object_guid,
// password_rotation, ad_hash, enabled, current) into a map sized for n.
func scanMembers(rows *sql.Rows, domain string, n int) (map[string]Member, error) {
	defer rows.Close()
	out := make(map[string]Member, n)
	for rows.Next() {
		var guid string
		var m Member
		if err := rows.Scan(&guid, &m.PasswordRotation, &m.ADHash, &m.Enabled, &m.Current); err != nil {
			return nil, fmt.Errorf("read the members of %s: %w", domain, err)
		}
		out[guid] = m
	}
	return out, rows.Err()
}

// ADHash is a hash of what a sync copies from AD into the account: two
// accounts with the same hash hold the same directory data.
func (a *Account) ADHash() string {
	h := sha256.New()
	for _, s := range []string{a.ObjectSID, a.SAMAccountName, a.UPN, a.Mail, a.GivenName, a.SN, a.DisplayName,
		a.Department, a.Title, a.Company, a.Telephone, a.DN} {
		binary.Write(h, binary.BigEndian, uint32(len(s)))
		h.Write([]byte(s))
	}
	var pwd int64 = -1
	if a.PwdLastSet != nil {
		pwd = a.PwdLastSet.UnixNano()
	}
	binary.Write(h, binary.BigEndian, pwd)
	binary.Write(h, binary.BigEndian, a.Enabled)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// CountMembers counts the accounts of a domain that are current members
// (not left, held removals included).
func (tx *Tx) CountMembers(ctx context.Context, domain string) (int, error) {
	var n int
	if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE domain = ? AND left_reason IS NULL`, domain).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the members of %s: %w", domain, err)
	}
	return n, nil
}

// MemberCounts counts the accounts of domain in its sync group (disabled
// ones too, as DomainMembers reads them), and those of them whose
// password KeyDesk rotates.
func (tx *Tx) MemberCounts(ctx context.Context, domain string) (members, rotating int, err error) {
	if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(password_rotation), 0) FROM accounts WHERE domain = ? AND in_sync_group = 1`, domain).Scan(&members, &rotating); err != nil {
		return 0, 0, fmt.Errorf("count the members of %s: %w", domain, err)
	}
	return members, rotating, nil
}

// LoadAround reads, inside the transaction, what a sync that read only
// some accounts needs: the employees the accounts of domain with these
// objectGUIDs belong to, the employees with these normalised emails, and
// every account of those employees.
func (tx *Tx) LoadAround(ctx context.Context, domain string, guids, emails []string) ([]Employee, []Account, error) {
	gj, err := json.Marshal(guids)
	if err != nil {
		return nil, nil, fmt.Errorf("read the accounts a sync changes: %w", err)
	}
	ej, err := json.Marshal(emails)
	if err != nil {
		return nil, nil, fmt.Errorf("read the accounts a sync changes: %w", err)
	}
	const ids = `(SELECT employee_id FROM accounts WHERE domain = ? AND object_guid IN (SELECT value FROM json_each(?))
		UNION SELECT id FROM employees WHERE email_norm IN (SELECT value FROM json_each(?)))`
	emps, err := queryEmployees(ctx, tx.tx, `WHERE id IN `+ids+` ORDER BY id`, domain, string(gj), string(ej))
	if err != nil {
		return nil, nil, err
	}
	accs, err := queryAccounts(ctx, tx.tx, `WHERE employee_id IN `+ids+` ORDER BY id`, domain, string(gj), string(ej))
	if err != nil {
		return nil, nil, err
	}
	return emps, accs, nil
}
