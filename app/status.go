package app

import (
	"context"
	"encoding/json"
	"time"

	"keydesk/store"
)

// DomainStatus is what the console shows of a domain.
type DomainStatus struct {
	Name        string
	URLs        []string
	LastSuccess *time.Time
	LastAttempt *time.Time
	LastError   string
	Last        *DomainSummary // the last successful sync's summary
	Members     int            // accounts that are current members
	Left        int            // accounts kept as leavers
	Held        int            // removals held by the accident guard
	Running     bool
	Next        time.Time // next scheduled sync (zero: none)
}

// Healthy reports whether the last attempt succeeded.
func (d DomainStatus) Healthy() bool { return d.LastAttempt != nil && d.LastError == "" }

// DomainStatuses reports every configured domain, in configuration order,
// with a fixed number of queries whatever the number of domains.
func (s *Service) DomainStatuses(ctx context.Context, a Actor) ([]DomainStatus, error) {
	if err := s.authorize(ctx, a, PermRead, "domains"); err != nil {
		return nil, err
	}
	states, err := s.st.SyncStates(ctx)
	if err != nil {
		return nil, err
	}
	byDomain := map[string]store.SyncState{}
	for _, st := range states {
		byDomain[st.Domain] = st
	}
	counts, err := s.st.Counts(ctx)
	if err != nil {
		return nil, err
	}
	held, err := s.st.HeldRemovals(ctx, "")
	if err != nil {
		return nil, err
	}
	heldBy := map[string]int{}
	for _, h := range held {
		heldBy[h.Domain]++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DomainStatus, 0, len(s.cfg.Domains))
	for _, d := range s.cfg.Domains {
		st := byDomain[d.Name]
		ds := DomainStatus{Name: d.Name, URLs: d.URLs, LastSuccess: st.LastSuccessAt, LastAttempt: st.LastAttemptAt, LastError: st.LastError,
			Members: counts.Accounts[d.Name], Left: counts.AccountsLeft[d.Name], Held: heldBy[d.Name], Running: s.running[d.Name], Next: s.schedule[d.Name]}
		if st.LastSummary != "" {
			var sum DomainSummary
			if json.Unmarshal([]byte(st.LastSummary), &sum) == nil {
				sum.Duration = time.Duration(sum.DurationMS) * time.Millisecond
				ds.Last = &sum
			}
		}
		out = append(out, ds)
	}
	return out, nil
}
