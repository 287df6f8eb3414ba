package app

import (
	"context"
	"strings"
	"sync"
	"time"

	"keydesk/store"
)

// maxChangeScan is the most audit entries WatchChanges reads to tell what
// changed; beyond it, everything is reloaded.
const maxChangeScan = 10000

// ownEntries are the audit entries this process wrote (and published
// itself), so that WatchChanges does not announce them a second time. An
// entry is known by its number and hash, recorded as it is written: an
// entry whose transaction rolled back leaves a hash that no committed entry
// has, so it is never mistaken for another process's entry of that number.
type ownEntries struct {
	mu       sync.Mutex
	watching bool
	hashes   map[int64]string // seq -> hash
}

func (o *ownEntries) add(e store.AuditEntry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.watching {
		o.hashes[e.Seq] = e.Hash
	}
}

// take reports whether the entry is this process's, forgetting it.
func (o *ownEntries) take(e store.AuditEntry) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	own := o.hashes[e.Seq] == e.Hash
	delete(o.hashes, e.Seq)
	return own
}

// forgetUpTo drops what WatchChanges has looked past.
func (o *ownEntries) forgetUpTo(seq int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for s := range o.hashes {
		if s <= seq {
			delete(o.hashes, s)
		}
	}
}

func (o *ownEntries) watch(on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.watching, o.hashes = on, map[int64]string{}
}

// WatchChanges notices, every interval until ctx ends, what other processes
// committed to the database (the command line, a second console, later a
// kiosk) and publishes it as DataChanged, so that every open console shows
// it within the interval, reloading only what changed. The signal is the
// audit log's head, one small query: every change writes an audit entry,
// and the entries written since the last look say what changed. Entries
// this process wrote were published when they were written and are skipped.
func (s *Service) WatchChanges(ctx context.Context, interval time.Duration) {
	s.own.watch(true)
	defer s.own.watch(false)
	last, err := s.st.AuditHead(ctx)
	if err != nil {
		s.log.Warn("watch for changes", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		head, err := s.st.AuditHead(ctx)
		if err != nil {
			s.log.Warn("watch for changes", "err", err)
			continue
		}
		if head == last {
			continue
		}
		what, err := s.foreignChanges(ctx, last, head)
		if err != nil {
			s.log.Warn("watch for changes", "err", err)
			what = ChangedAll
		}
		s.own.forgetUpTo(head)
		last = head
		if what != 0 {
			s.publish(DataChanged{What: what})
		}
	}
}

// foreignChanges says what the entries after seq last, up to head, that
// this process did not write, changed.
func (s *Service) foreignChanges(ctx context.Context, last, head int64) (Change, error) {
	if head < last || head-last > maxChangeScan {
		return ChangedAll, nil // the log was replaced, or too much to read
	}
	var what Change
	err := s.st.AuditEntries(ctx, store.AuditFilter{AfterSeq: last, Limit: int(head - last)}, func(e store.AuditEntry) error {
		if !s.own.take(e) {
			what |= changeOf(e)
		}
		return nil
	})
	return what, err
}

// changeOf says what kinds of data the change an audit entry records
// touched.
func changeOf(e store.AuditEntry) Change {
	switch {
	case e.Outcome == store.OutcomeDenied:
		return ChangedAudit
	case e.Action == "sync":
		return ChangedAll
	case strings.HasPrefix(e.Action, "employee."):
		return ChangedEmployees | ChangedAudit
	case strings.HasPrefix(e.Action, "key."):
		return keysChanged
	case strings.HasPrefix(e.Action, "password."):
		return passwordsChanged
	}
	return ChangedAll
}
