// Package podroutes makes pods on other nodes reachable the host-gateway
// way: for every other live node it installs a route to that node's pod
// CIDR via the node's address, and removes the route once the node is gone.
// It needs the nodes on one L2 segment (a LAN, a Vagrant private network,
// the network namespaces of `make lab`), as flannel's host-gw backend does.
//
// The routes carry a protocol number of their own (Proto), so a restarted
// agent finds the routes it installed before and removes stale ones
// without touching routes anybody else made.
package podroutes

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Proto marks Shoal's pod routes (`ip route show proto 83`); 83 is 'S' and
// outside the numbers iproute2 names in /etc/iproute2/rt_protos.
const Proto netlink.RouteProtocol = 83

// Peer is what the route planner needs of a node.
type Peer struct {
	Name    string
	Addr    string // the node's address (gossip bind IP)
	PodCIDR string
}

// Route sends Dst via the node at Via.
type Route struct {
	Dst  netip.Prefix
	Via  netip.Addr
	Node string
}

func (r Route) String() string { return fmt.Sprintf("%s via %s (%s)", r.Dst, r.Via, r.Node) }

// Plan returns the routes for peers, sorted by destination: one per peer
// other than self with a valid pod CIDR and a routable address (loopback
// peers share this host, whose bridges already reach their pods), none to
// a range that overlaps self's, and for a range two peers claim, the route
// to the first by name (the cluster never gives out one range twice; this
// only keeps a stale gossip view from flapping the route).
func Plan(self Peer, peers []Peer) []Route {
	own, _ := netip.ParsePrefix(self.PodCIDR)
	byDst := map[netip.Prefix]Route{}
	for _, p := range peers {
		if p.Name == self.Name {
			continue
		}
		dst, err := netip.ParsePrefix(p.PodCIDR)
		if err != nil || !dst.Addr().Is4() || dst.Masked() != dst {
			continue
		}
		via, err := netip.ParseAddr(p.Addr)
		if err != nil || !via.Is4() || via.IsLoopback() || via.IsUnspecified() || via.String() == self.Addr {
			continue
		}
		if own.IsValid() && own.Overlaps(dst) {
			continue
		}
		if cur, ok := byDst[dst]; ok && cur.Node < p.Name {
			continue
		}
		byDst[dst] = Route{Dst: dst, Via: via, Node: p.Name}
	}
	out := make([]Route, 0, len(byDst))
	for _, r := range byDst {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return cmp.Compare(a.Dst.String(), b.Dst.String()) })
	return out
}

// Diff returns what to add (or replace) and what to delete to go from have
// to want; routes are compared by destination and gateway.
func Diff(have, want []Route) (add, del []Route) {
	key := func(r Route) string { return r.Dst.String() + " " + r.Via.String() }
	haveSet := map[string]bool{}
	for _, r := range have {
		haveSet[key(r)] = true
	}
	wantDst := map[netip.Prefix]bool{}
	for _, r := range want {
		wantDst[r.Dst] = true
		if !haveSet[key(r)] {
			add = append(add, r)
		}
	}
	for _, r := range have {
		if !wantDst[r.Dst] {
			del = append(del, r)
		}
	}
	return add, del
}

// Table installs routes in one network namespace's main table.
type Table struct {
	h *netlink.Handle
}

// New returns a Table on the caller's network namespace.
func New() *Table { return &Table{h: &netlink.Handle{}} }

// NewAt returns a Table working through h (a handle on another namespace).
func NewAt(h *netlink.Handle) *Table { return &Table{h: h} }

// List returns the routes this package installed.
func (t *Table) List() ([]Route, error) {
	rs, err := t.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: Proto, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list pod routes: %w", err)
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		dst, ok1 := netip.AddrFromSlice(r.Dst.IP)
		via, ok2 := netip.AddrFromSlice(r.Gw)
		if !ok1 || !ok2 {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		out = append(out, Route{Dst: netip.PrefixFrom(dst.Unmap(), ones), Via: via.Unmap()})
	}
	return out, nil
}

// Sync makes the installed routes exactly want and returns what changed.
// A route that cannot be added (its gateway not on a connected network) is
// reported in the error; the others are still made.
func (t *Table) Sync(want []Route) (added, deleted []Route, err error) {
	have, err := t.List()
	if err != nil {
		return nil, nil, err
	}
	add, del := Diff(have, want)
	var errs []error
	for _, r := range del {
		if err := t.h.RouteDel(t.route(r)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", r, err))
			continue
		}
		deleted = append(deleted, r)
	}
	for _, r := range add {
		if err := t.h.RouteReplace(t.route(r)); err != nil {
			errs = append(errs, fmt.Errorf("add route %s: %w", r, err))
			continue
		}
		added = append(added, r)
	}
	return added, deleted, errors.Join(errs...)
}

func (t *Table) route(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
		Gw:       r.Via.AsSlice(),
		Protocol: Proto,
		Table:    unix.RT_TABLE_MAIN,
	}
}
