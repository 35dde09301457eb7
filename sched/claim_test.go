package sched

import (
	"fmt"
	"slices"
	"testing"
)

func uids(n int) []string {
	out := make([]string, n)
	for i := range out {
		// uuid-shaped, as the state machine hands them out
		out[i] = fmt.Sprintf("6f1c%04x-9a2b-4c3d-8e4f-%012x", i%65536, i*7919)
	}
	return out
}

func TestClaimer(t *testing.T) {
	tests := []struct {
		name   string
		uid    string
		agents []string
		want   string
	}{
		{"no agents", "u1", nil, ""},
		{"only empty names", "u1", []string{""}, ""},
		{"one agent", "u1", []string{"n1"}, "n1"},
		{"duplicates", "u1", []string{"n1", "n1"}, "n1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Claimer(tt.uid, tt.agents); got != tt.want {
				t.Errorf("Claimer = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClaimerOrderIndependent(t *testing.T) {
	agents := []string{"n1", "n2", "n3", "n4", "n5"}
	rev := slices.Clone(agents)
	slices.Reverse(rev)
	for _, u := range uids(500) {
		if a, b := Claimer(u, agents), Claimer(u, rev); a != b {
			t.Fatalf("uid %s: %q with one order, %q with another", u, a, b)
		}
	}
}

// TestClaimerStable: removing an agent moves only the pods it claimed, and
// adding one moves pods only to it.
func TestClaimerStable(t *testing.T) {
	all := []string{"n1", "n2", "n3", "n4"}
	for _, gone := range all {
		t.Run("remove "+gone, func(t *testing.T) {
			rest := slices.DeleteFunc(slices.Clone(all), func(a string) bool { return a == gone })
			moved := 0
			for _, u := range uids(3000) {
				before, after := Claimer(u, all), Claimer(u, rest)
				if before != gone && after != before {
					t.Fatalf("uid %s moved from %s to %s when %s left", u, before, after, gone)
				}
				if before == gone {
					moved++
				}
			}
			if moved == 0 {
				t.Errorf("%s claimed no pod of 3000", gone)
			}
		})
	}
	t.Run("add n5", func(t *testing.T) {
		more := append(slices.Clone(all), "n5")
		for _, u := range uids(3000) {
			before, after := Claimer(u, all), Claimer(u, more)
			if after != before && after != "n5" {
				t.Fatalf("uid %s moved from %s to %s when n5 joined", u, before, after)
			}
		}
	})
}

func TestClaimerDistribution(t *testing.T) {
	tests := []struct {
		name   string
		agents []string
	}{
		{"short names", []string{"n1", "n2", "n3"}},
		{"similar long names", []string{"agent-east-0001", "agent-east-0002", "agent-east-0003"}},
		{"addresses", []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts := map[string]int{}
			for _, u := range uids(3000) {
				counts[Claimer(u, tt.agents)]++
			}
			// 1000 each expected; binomial sd is about 26, allow 5 sd.
			for _, a := range tt.agents {
				if c := counts[a]; c < 870 || c > 1130 {
					t.Errorf("%s claimed %d of 3000 (all: %v)", a, c, counts)
				}
			}
		})
	}
}
