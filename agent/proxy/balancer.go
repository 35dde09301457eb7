package proxy

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/object/manifest"
)

// backend is a Backend with the balancer's live state. A backend that stays
// in the table across updates keeps its struct, so its connection count
// carries over.
type backend struct {
	Backend
	active atomic.Int64 // open connections or flows
}

// group is the backends of one value of the weights label.
type group struct {
	value   string
	weight  int
	current int // smooth weighted round robin state
}

type affinity struct {
	to   *backend
	last time.Time
}

// balancer picks a backend for each new connection of one service port.
// It is safe for concurrent use.
type balancer struct {
	now func() time.Time

	mu       sync.Mutex
	port     Port
	backends []*backend
	groups   []*group
	next     map[string]int // round robin position per group
	sticky   map[netip.Addr]affinity
}

func newBalancer(now func() time.Time) *balancer {
	return &balancer{now: now, sticky: map[netip.Addr]affinity{}, next: map[string]int{}}
}

// update replaces the port's configuration and backends. Backends that
// stay keep their state; those that leave get no new connections, and
// affinities to them are forgotten.
func (b *balancer) update(p Port) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := map[Backend]*backend{}
	for _, be := range b.backends {
		old[be.Backend] = be
	}
	b.backends = b.backends[:0:0]
	for _, nb := range p.Backends {
		be := old[nb]
		if be == nil {
			be = &backend{Backend: nb}
		}
		b.backends = append(b.backends, be)
	}
	keep := map[*backend]bool{}
	for _, be := range b.backends {
		keep[be] = true
	}
	for ip, a := range b.sticky {
		if !keep[a.to] || p.Affinity == 0 {
			delete(b.sticky, ip)
		}
	}
	oldGroups := map[string]*group{}
	for _, g := range b.groups {
		oldGroups[g.value] = g
	}
	b.groups = nil
	if w := p.Weights; w != nil {
		for _, v := range w.Values {
			g := oldGroups[v]
			if g == nil || g.weight != w.Weight[v] {
				g = &group{value: v, weight: w.Weight[v]}
			}
			b.groups = append(b.groups, g)
		}
	}
	b.port = p
}

// size is the number of backends.
func (b *balancer) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.backends)
}

// pick chooses a backend for a new connection from client, skipping those
// in tried (dials that failed for this connection). Nil: none is left.
func (b *balancer) pick(client netip.Addr, tried map[*backend]bool) *backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.port.Affinity > 0 {
		if a, ok := b.sticky[client]; ok && now.Sub(a.last) < b.port.Affinity && !tried[a.to] {
			a.last = now
			b.sticky[client] = a
			return a.to
		}
	}
	pool, rr := b.backends, ""
	if len(b.groups) > 0 {
		pool, rr = b.weighted(tried)
	}
	// The next untried backend in the pool's order: a failed dial's turn
	// goes to the one after it, so a dead backend does not skew the rest.
	var chosen *backend
	n := len(pool)
	start := b.next[rr] % max(n, 1)
	for i := range n {
		be := pool[(start+i)%n]
		if tried[be] {
			continue
		}
		if chosen == nil {
			chosen = be
			b.next[rr] = (start + i + 1) % n
			if b.port.Policy != manifest.LeastConnections {
				break
			}
		}
		// Least connections: the fewest open; ties go round robin.
		if be.active.Load() < chosen.active.Load() {
			chosen = be
		}
	}
	if chosen == nil {
		return nil
	}
	if b.port.Affinity > 0 {
		b.sticky[client] = affinity{to: chosen, last: now}
		if len(b.sticky) > 4*len(b.backends)+1024 {
			b.expireLocked(now)
		}
	}
	return chosen
}

// routes returns the port's HTTP routes (nil: none).
func (b *balancer) routes() *manifest.Routes {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.port.Routes
}

// pickRoute chooses, round robin, an untried backend whose routes label
// has the value target. Nil: none is left.
func (b *balancer) pickRoute(target string, tried map[*backend]bool) *backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	var pool []*backend
	for _, be := range b.backends {
		if be.Route == target {
			pool = append(pool, be)
		}
	}
	key := "route=" + target
	n := len(pool)
	start := b.next[key] % max(n, 1)
	for i := range n {
		if be := pool[(start+i)%n]; !tried[be] {
			b.next[key] = (start + i + 1) % n
			return be
		}
	}
	return nil
}

// weighted picks a group by smooth weighted round robin among those with
// an untried backend and returns all its backends. With no such group
// (every weighted group empty or tried), all backends are the pool.
func (b *balancer) weighted(tried map[*backend]bool) ([]*backend, string) {
	members := map[string][]*backend{}
	live := map[string]bool{}
	for _, be := range b.backends {
		members[be.Group] = append(members[be.Group], be)
		if !tried[be] {
			live[be.Group] = true
		}
	}
	total := 0
	var best *group
	for _, g := range b.groups {
		if g.weight == 0 || !live[g.value] {
			continue
		}
		g.current += g.weight
		total += g.weight
		if best == nil || g.current > best.current {
			best = g
		}
	}
	if best == nil {
		return b.backends, ""
	}
	best.current -= total
	return members[best.value], "=" + best.value
}

func (b *balancer) expireLocked(now time.Time) {
	for ip, a := range b.sticky {
		if now.Sub(a.last) >= b.port.Affinity {
			delete(b.sticky, ip)
		}
	}
}
