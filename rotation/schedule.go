package rotation

import "time"

// When a managed password is due. The rotation period is the domain's
// choice (default 28 days); it never lets a password reach the domain's
// maximum age (a rotation is due at nine tenths of it at the latest), and
// never makes one due before the minimum age has passed since the last
// change (a DC does not hold an administrative reset to the minimum age;
// KeyDesk holds its own schedule to it).

// ScheduleFacts are what NextDue decides from.
type ScheduleFacts struct {
	// LastSet is when AD last got a password for the account: pwdLastSet
	// as the last sync read it, or KeyDesk's own record of a change,
	// whichever is later (zero: never, or unknown).
	LastSet time.Time
	// OnKey: the employee's key holds a password KeyDesk set for the
	// account.
	OnKey bool
	// Period is the domain's rotation period.
	Period time.Duration
	// MinAge and MaxAge are the policy's (zero: none).
	MinAge, MaxAge time.Duration
}

// Effective is the rotation period in force: Period, shortened to nine
// tenths of MaxAge, and never shorter than MinAge.
func Effective(period, minAge, maxAge time.Duration) time.Duration {
	eff := period
	if maxAge > 0 {
		eff = min(eff, maxAge-maxAge/10)
	}
	return max(eff, minAge)
}

// NextDue says when the account's password is next due, and why then. A
// key without KeyDesk's password for the account, or a password never set,
// is due at once (the zero time).
func NextDue(f ScheduleFacts) (time.Time, string) {
	switch {
	case !f.OnKey:
		return time.Time{}, "the key has no password for this account yet"
	case f.LastSet.IsZero():
		return time.Time{}, "AD does not say when the password was set"
	}
	due := f.LastSet.Add(Effective(f.Period, f.MinAge, f.MaxAge))
	switch {
	case f.MaxAge > 0 && f.Period > f.MaxAge-f.MaxAge/10:
		return due, "nine tenths of the domain's maximum password age"
	case f.MinAge > f.Period:
		return due, "the domain's minimum password age"
	}
	return due, "the rotation period"
}
