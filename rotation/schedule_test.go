package rotation

import (
	"strings"
	"testing"
	"time"
)

func TestNextDue(t *testing.T) {
	day := 24 * time.Hour
	set := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    ScheduleFacts
		want time.Time
		why  string
	}{
		{"the period", ScheduleFacts{LastSet: set, OnKey: true, Period: 28 * day, MinAge: day, MaxAge: 42 * day}, set.Add(28 * day), "rotation period"},
		{"no policy ages", ScheduleFacts{LastSet: set, OnKey: true, Period: 28 * day}, set.Add(28 * day), "rotation period"},
		{"capped by the maximum age", ScheduleFacts{LastSet: set, OnKey: true, Period: 90 * day, MaxAge: 30 * day}, set.Add(27 * day), "maximum password age"},
		{"period at the cap", ScheduleFacts{LastSet: set, OnKey: true, Period: 27 * day, MaxAge: 30 * day}, set.Add(27 * day), "rotation period"},
		{"held to the minimum age", ScheduleFacts{LastSet: set, OnKey: true, Period: day, MinAge: 2 * day}, set.Add(2 * day), "minimum password age"},
		{"minimum age above a short maximum", ScheduleFacts{LastSet: set, OnKey: true, Period: 28 * day, MinAge: 10 * day, MaxAge: 10 * day}, set.Add(10 * day), "maximum password age"},
		{"not on the key", ScheduleFacts{LastSet: set, OnKey: false, Period: 28 * day}, time.Time{}, "no password for this account"},
		{"never set", ScheduleFacts{OnKey: true, Period: 28 * day}, time.Time{}, "does not say"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := NextDue(tt.f)
			if !got.Equal(tt.want) {
				t.Errorf("NextDue = %v, want %v", got, tt.want)
			}
			if !strings.Contains(why, tt.why) {
				t.Errorf("why = %q, want it to mention %q", why, tt.why)
			}
			if !got.IsZero() && got.Before(tt.f.LastSet.Add(tt.f.MinAge)) {
				t.Errorf("due %v before the minimum age has passed", got)
			}
		})
	}
}
