// Package dbtamper plays, in tests, an attacker who can write to the
// database file: it runs raw SQL on the file, bypassing every rule of
// package store (the only other place with SQL), so that a test can check
// that KeyDesk notices. Only tests import it.
package dbtamper

import (
	"database/sql"
	"testing"

	_ "modernc.org/sqlite" // the same driver as the store
)

// Exec runs statements on the SQLite database at path, in order, and fails
// the test if one fails.
func Exec(t testing.TB, path string, statements ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatalf("tamper: open %s: %v", path, err)
	}
	defer db.Close()
	for _, q := range statements {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("tamper: %s: %v", q, err)
		}
	}
}
