package proxy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/object/manifest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func backends(groups ...string) []Backend {
	var out []Backend
	for i, g := range groups {
		out = append(out, Backend{Addr: netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:80", i+1)), Pod: fmt.Sprint("p", i), Group: g})
	}
	return out
}

var client = netip.MustParseAddr("192.0.2.7")

func counts(b *balancer, n int, from func(i int) netip.Addr) map[string]int {
	out := map[string]int{}
	for i := range n {
		be := b.pick(from(i), nil)
		if be == nil {
			out["<nil>"]++
			continue
		}
		out[be.Pod]++
	}
	return out
}

func same(netip.Addr) func(int) netip.Addr { return func(int) netip.Addr { return client } }

func TestRoundRobinIsEven(t *testing.T) {
	b := newBalancer(time.Now)
	b.update(Port{Backends: backends("", "", "")})
	got := counts(b, 300, same(client))
	for _, p := range []string{"p0", "p1", "p2"} {
		if got[p] != 100 {
			t.Fatalf("300 picks over 3 backends: %v", got)
		}
	}
}

func TestNoBackendAndTried(t *testing.T) {
	b := newBalancer(time.Now)
	if be := b.pick(client, nil); be != nil {
		t.Fatalf("empty balancer picked %v", be.Backend)
	}
	b.update(Port{Backends: backends("", "")})
	tried := map[*backend]bool{}
	first := b.pick(client, tried)
	tried[first] = true
	second := b.pick(client, tried)
	if second == nil || second == first {
		t.Fatalf("retry picked %v after %v", second, first)
	}
	tried[second] = true
	if be := b.pick(client, tried); be != nil {
		t.Fatalf("every backend tried, still picked %v", be.Backend)
	}
}

func TestLeastConnections(t *testing.T) {
	b := newBalancer(time.Now)
	b.update(Port{Backends: backends("", "", ""), Policy: manifest.LeastConnections})
	b.backends[0].active.Store(5)
	b.backends[1].active.Store(1)
	b.backends[2].active.Store(3)
	for range 3 {
		if be := b.pick(client, nil); be.Pod != "p1" {
			t.Fatalf("picked %s with %d open, want p1 with 1", be.Pod, be.active.Load())
		}
	}
	// Ties spread round robin.
	for _, be := range b.backends {
		be.active.Store(0)
	}
	if got := counts(b, 30, same(client)); got["p0"] != 10 || got["p1"] != 10 || got["p2"] != 10 {
		t.Fatalf("ties: %v", got)
	}
}

func TestClientIPAffinity(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	b := newBalancer(c.now)
	b.update(Port{Backends: backends("", "", ""), Affinity: 10 * time.Second})
	first := b.pick(client, nil)
	for range 20 {
		c.t = c.t.Add(time.Second)
		if be := b.pick(client, nil); be != first {
			t.Fatalf("affinity broken: %s then %s", first.Pod, be.Pod)
		}
	}
	other := netip.MustParseAddr("192.0.2.8")
	if be := b.pick(other, nil); be == first {
		t.Fatalf("a second client got the first one's backend under round robin")
	}
	// Idle past the timeout: round robin again.
	c.t = c.t.Add(11 * time.Second)
	if be := b.pick(client, nil); be == first {
		t.Fatalf("affinity outlived its timeout")
	}
	// A failed dial to the sticky backend moves the client.
	stuck := b.pick(client, nil)
	if be := b.pick(client, map[*backend]bool{stuck: true}); be == stuck || be == nil {
		t.Fatalf("retry stuck to the failed backend")
	}
	// A backend that leaves drops its affinities.
	now := b.pick(client, nil)
	var rest []Backend
	for _, be := range backends("", "", "") {
		if be != now.Backend {
			rest = append(rest, be)
		}
	}
	b.update(Port{Backends: rest, Affinity: 10 * time.Second})
	if be := b.pick(client, nil); be.Backend == now.Backend {
		t.Fatalf("picked %s after it left", be.Pod)
	}
}

func TestWeightedGroupsSplitExactly(t *testing.T) {
	w, err := manifest.ParseWeights("version: v1=90, v2=10")
	if err != nil {
		t.Fatal(err)
	}
	b := newBalancer(time.Now)
	b.update(Port{Backends: backends("v1", "v1", "v1", "v2", "v3"), Weights: &w})
	got := counts(b, 2000, same(client))
	if v2 := got["p3"]; v2 != 200 {
		t.Fatalf("v2 got %d of 2000, want 200: %v", v2, got)
	}
	if got["p4"] != 0 {
		t.Fatalf("unlisted group v3 got %d", got["p4"])
	}
	if got["p0"] != 600 || got["p1"] != 600 || got["p2"] != 600 {
		t.Fatalf("v1's share not spread evenly over its pods: %v", got)
	}
	// Every ten picks hold exactly one v2 (smooth, not bursty).
	for i := range 10 {
		if n := counts(b, 10, same(client))["p3"]; n != 1 {
			t.Fatalf("window %d: %d picks of v2 in 10", i, n)
		}
	}
	// v2 gone: v1 takes everything.
	b.update(Port{Backends: backends("v1", "v1"), Weights: &w})
	if got := counts(b, 10, same(client)); got["p0"]+got["p1"] != 10 {
		t.Fatalf("without v2: %v", got)
	}
	// No listed group left: the others serve rather than nothing.
	b.update(Port{Backends: backends("v3"), Weights: &w})
	if got := counts(b, 5, same(client)); got["p0"] != 5 {
		t.Fatalf("only unlisted pods: %v", got)
	}
}

func TestUpdateKeepsConnectionCounts(t *testing.T) {
	b := newBalancer(time.Now)
	bs := backends("", "")
	b.update(Port{Backends: bs, Policy: manifest.LeastConnections})
	b.backends[1].active.Store(7)
	b.update(Port{Backends: append(bs, backends("", "", "")[2]), Policy: manifest.LeastConnections})
	if b.backends[1].active.Load() != 7 || b.size() != 3 {
		t.Fatalf("update lost the open count (%d) or the new backend (%d)", b.backends[1].active.Load(), b.size())
	}
}
