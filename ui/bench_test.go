package ui

import (
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
)

// benchModel is a console at 120x40 over n employees held in memory (the
// database is not involved: these measure drawing and filtering).
func benchModel(b *testing.B, n int) *Model {
	b.Helper()
	views := make([]app.EmployeeView, n)
	for i := range views {
		email := fmt.Sprintf("user%06d@example.com", i)
		views[i] = app.EmployeeView{ID: int64(i + 1), Email: &email, DisplayName: fmt.Sprintf("Person %06d", i), Status: "active", Source: "ad",
			Flags: []string{}, Accounts: []app.AccountView{{Domain: "corp", SAMAccountName: fmt.Sprintf("user%06d", i), DN: "CN=x,DC=corp", Enabled: true, InSyncGroup: true}}}
	}
	m := New(nil, Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC, NoEvents: true})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m.Update(employeesMsg{rows: buildRows(views, nil)})
	return m
}

// BenchmarkView draws one frame with 100,000 employees loaded.
func BenchmarkView(b *testing.B) {
	m := benchModel(b, 100000)
	pressOnly(m, keys("G")) // the end of the list
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = m.View()
	}
}

// BenchmarkFilterKeystroke is one key typed into the filter over 100,000
// employees: the first key scans everything; a key that extends the query
// only searches the previous matches. Both include drawing the frame.
func BenchmarkFilterKeystroke(b *testing.B) {
	for _, bc := range []struct{ name, before, key string }{
		{"first-key", "", "7"},
		{"extending", "person 0", "4"},
		{"fuzzy", "", "z"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := benchModel(b, 100000)
			pressOnly(m, append([]tea.Msg{keys("/")}, typeText(bc.before)...)...)
			e := m.employees()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e.input.SetValue(bc.before)
				e.filter = employeeFilter{}
				e.filter.apply(e.rows, bc.before)
				b.StartTimer()
				pressOnly(m, keys(bc.key))
				_ = m.View()
			}
		})
	}
}
