package ui

import (
	"fmt"
	"runtime"
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
		views[i] = benchEmployee(i)
	}
	m := New(nil, Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC, NoEvents: true})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m.Update(employeesMsg{rows: buildRows(views, nil)})
	return m
}

// benchEmployee is employee i as a sync of the built-in directory gives
// them: one account with its details.
func benchEmployee(i int) app.EmployeeView {
	email := fmt.Sprintf("user%06d@example.com", i)
	sam := fmt.Sprintf("user%06d", i)
	return app.EmployeeView{ID: int64(i + 1), Email: &email, DisplayName: fmt.Sprintf("Person %06d", i), Status: "active", Source: "ad",
		Department: "Engineering", Flags: []string{}, Accounts: []app.AccountView{{Domain: "corp", SAMAccountName: sam,
			UPN: sam + "@corp.example.test", Mail: email, DisplayName: fmt.Sprintf("Person %06d", i), GivenName: "Person", SN: fmt.Sprintf("%06d", i),
			ObjectGUID: fmt.Sprintf("%08x-0000-4000-8000-000000000000", i), ObjectSID: fmt.Sprintf("S-1-5-21-1-2-3-%d", 1000+i),
			Department: "Engineering", Title: "Engineer", Company: "Example", Telephone: "+1 555 0100",
			DN: "CN=" + sam + ",OU=Engineering,OU=Staff,DC=corp,DC=example,DC=test", Enabled: true, InSyncGroup: true}}}
}

// BenchmarkListMemory is the heap the Employees pane's list holds for
// 100,000 employees, as its load builds it from the stream (each view is
// dropped once its row is made): MB/100k is the figure.
func BenchmarkListMemory(b *testing.B) {
	const n = 100000
	var ms runtime.MemStats
	for i := 0; i < b.N; i++ {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		rb := newRowBuilder(nil)
		rows := make([]*empRow, 0, n)
		for j := range n {
			v := benchEmployee(j)
			rows = append(rows, rb.row(&v))
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/1e6, "MB/100k")
		runtime.KeepAlive(rows)
	}
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
