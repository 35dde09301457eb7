package object

import (
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestSelector(t *testing.T) {
	web := &shoalpb.Object{Labels: map[string]string{"app": "web", "tier": "front"}}
	db := &shoalpb.Object{Labels: map[string]string{"app": "db"}}
	none := &shoalpb.Object{}
	tests := []struct {
		name    string
		sel     string
		wantErr string
		match   []bool // web, db, none
	}{
		{name: "empty selects all", sel: "", match: []bool{true, true, true}},
		{name: "equality", sel: "app=web", match: []bool{true, false, false}},
		{name: "double equals", sel: "app==db", match: []bool{false, true, false}},
		{name: "inequality", sel: "app!=web", match: []bool{false, true, true}},
		{name: "and", sel: "app=web,tier=front", match: []bool{true, false, false}},
		{name: "set in", sel: "app in (web,db)", match: []bool{true, true, false}},
		{name: "set notin", sel: "app notin (web)", match: []bool{false, true, true}},
		{name: "exists", sel: "tier", match: []bool{true, false, false}},
		{name: "not exists", sel: "!tier", match: []bool{false, true, true}},
		{name: "bad syntax", sel: "app in (", wantErr: `bad label selector "app in ("`},
		{name: "bad value", sel: "app=a b", wantErr: `bad label selector "app=a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := ParseSelector(tt.sel)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr+": ") {
					t.Fatalf("ParseSelector(%q) error = %v, want prefix %q", tt.sel, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSelector(%q): %v", tt.sel, err)
			}
			for i, o := range []*shoalpb.Object{web, db, none} {
				if got := Matches(sel, o); got != tt.match[i] {
					t.Errorf("Matches(%q, %v) = %v, want %v", tt.sel, o.Labels, got, tt.match[i])
				}
			}
		})
	}
	if !Matches(nil, web) {
		t.Error("a nil selector must match everything")
	}
}

func TestAge(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ago  time.Duration
		want string
	}{
		{"now", 0, "0s"},
		{"clock skew", -time.Second, "0s"},
		{"far future", -time.Minute, "<invalid>"},
		{"seconds", 5 * time.Second, "5s"},
		{"under two minutes", 90 * time.Second, "90s"},
		{"minutes", 3 * time.Minute, "3m"},
		{"minutes and seconds", 5*time.Minute + 30*time.Second, "5m30s"},
		{"tens of minutes", 45 * time.Minute, "45m"},
		{"hours", 4 * time.Hour, "4h"},
		{"hours and minutes", 2*time.Hour + 90*time.Minute, "3h30m"},
		{"a day", 30 * time.Hour, "30h"},
		{"days", 4 * 24 * time.Hour, "4d"},
		{"days and hours", 4*24*time.Hour + 5*time.Hour, "4d5h"},
		{"weeks", 30 * 24 * time.Hour, "30d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Age(now.Add(-tt.ago).UnixNano(), now); got != tt.want {
				t.Fatalf("Age(%v ago) = %q, want %q", tt.ago, got, tt.want)
			}
		})
	}
	if got := Age(0, now); got != "<unknown>" {
		t.Fatalf("Age(0) = %q, want <unknown>", got)
	}
}
