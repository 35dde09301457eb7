package agent

import (
	"fmt"
	"testing"

	"github.com/shoal-dev/shoal/sched"
)

func TestBreakTieStartsFromTheClaimersPlaceOnTheRing(t *testing.T) {
	d := sched.Decision{Node: "n1", Score: map[string]int64{"n1": 90, "n2": 90, "n3": 50, "n4": 90}}
	for self, want := range map[string]string{"n1": "n1", "n2": "n2", "n3": "n4", "n4": "n4", "n5": "n1", "a": "n1"} {
		if got := breakTie(d, self); got != want {
			t.Errorf("claimer %s: got %s, want %s", self, got, want)
		}
	}
	if got := breakTie(sched.Decision{Node: "n3", Score: map[string]int64{"n3": 1, "n1": 0}}, "n1"); got != "n3" {
		t.Errorf("a single best node: got %s", got)
	}
}

// TestClaimersFromOneViewSpreadEvenly simulates a round in which every
// agent places its share of pods from the same empty view: the ring start
// keeps every node within a few pods of the mean.
func TestClaimersFromOneViewSpreadEvenly(t *testing.T) {
	const agents, pods = 100, 1000
	var names []string
	for i := range agents {
		names = append(names, fmt.Sprintf("n%03d", i))
	}
	perNode := map[string]int{}
	claimed := map[string]int{}
	for i := range pods {
		claimed[sched.Claimer(fmt.Sprintf("pod-%d", i), names)]++
	}
	for _, self := range names {
		// Within its round a claimer sees its own earlier placements.
		mine := map[string]int{}
		for range claimed[self] {
			d := sched.Decision{Score: map[string]int64{}}
			low := -1
			for _, n := range names {
				if low < 0 || mine[n] < low {
					low = mine[n]
				}
			}
			for _, n := range names {
				if mine[n] == low {
					d.Score[n] = 100
					d.Node = n
				}
			}
			n := breakTie(d, self)
			mine[n]++
			perNode[n]++
		}
	}
	lo, hi := pods, 0
	for _, n := range names {
		lo, hi = min(lo, perNode[n]), max(hi, perNode[n])
	}
	if hi-lo > 12 {
		t.Fatalf("pods per node range %d..%d; want within a dozen", lo, hi)
	}
	t.Logf("pods per node %d..%d", lo, hi)
}
