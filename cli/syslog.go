package cli

import (
	"fmt"
	"log/syslog"
	"strings"
	"sync"

	"keydesk/store"
)

// syslogSink sends each audit entry's number, action, outcome, hash and MAC
// to the system log (address "" = the local one), so that the log's history
// is also kept where whoever can write the database cannot reach it.
// Entries carry no details there: nothing from the directory, no secret.
func syslogSink(address string) (func(store.AuditEntry), error) {
	network, raddr, _ := strings.Cut(address, ":")
	w, err := syslog.Dial(network, raddr, syslog.LOG_AUTHPRIV|syslog.LOG_NOTICE, "keydesk")
	if err != nil {
		return nil, fmt.Errorf("audit.syslog: connect to the system log %q: %w", address, err)
	}
	var mu sync.Mutex
	return func(e store.AuditEntry) {
		mu.Lock()
		defer mu.Unlock()
		w.Notice(fmt.Sprintf("audit seq=%d action=%s outcome=%s hash=%s mac=%s", e.Seq, e.Action, e.Outcome, e.Hash, e.MAC))
	}, nil
}
