package podroutes

import (
	"net"
	"net/netip"
	"os"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestPlan(t *testing.T) {
	self := Peer{Name: "a", Addr: "192.168.77.2", PodCIDR: "10.244.1.0/24"}
	peers := []Peer{
		self,
		{Name: "b", Addr: "192.168.77.3", PodCIDR: "10.244.2.0/24"},
		{Name: "c", Addr: "192.168.77.4", PodCIDR: "10.244.3.0/24"},
		{Name: "d", Addr: "127.0.0.5", PodCIDR: "10.244.4.0/24"},      // same host
		{Name: "e", Addr: "192.168.77.6", PodCIDR: ""},                // no range yet
		{Name: "f", Addr: "192.168.77.7", PodCIDR: "10.244.1.128/25"}, // overlaps ours
		{Name: "g", Addr: "192.168.77.8", PodCIDR: "10.244.5.1/24"},   // not canonical
		{Name: "h", Addr: "192.168.77.9", PodCIDR: "10.244.3.0/24"},   // c's, claimed twice
		{Name: "i", Addr: "not-an-ip", PodCIDR: "10.244.6.0/24"},
	}
	got := Plan(self, peers)
	want := []Route{
		{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: netip.MustParseAddr("192.168.77.3"), Node: "b"},
		{Dst: netip.MustParsePrefix("10.244.3.0/24"), Via: netip.MustParseAddr("192.168.77.4"), Node: "c"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Plan = %v\nwant %v", got, want)
	}
	// Order of peers does not matter for a range claimed twice.
	slices.Reverse(peers)
	if got := Plan(self, peers); !slices.Equal(got, want) {
		t.Fatalf("Plan of reversed peers = %v\nwant %v", got, want)
	}
}

func TestDiff(t *testing.T) {
	r := func(dst, via string) Route {
		return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
	}
	have := []Route{r("10.244.2.0/24", "192.168.77.3"), r("10.244.3.0/24", "192.168.77.4"), r("10.244.9.0/24", "192.168.77.9")}
	want := []Route{r("10.244.2.0/24", "192.168.77.3"), r("10.244.3.0/24", "192.168.77.5"), r("10.244.4.0/24", "192.168.77.6")}
	add, del := Diff(have, want)
	if !slices.Equal(add, []Route{r("10.244.3.0/24", "192.168.77.5"), r("10.244.4.0/24", "192.168.77.6")}) {
		t.Errorf("add = %v", add)
	}
	// A moved range is replaced in place, not deleted.
	if !slices.Equal(del, []Route{r("10.244.9.0/24", "192.168.77.9")}) {
		t.Errorf("del = %v", del)
	}
}

// TestSyncInNetNS installs, moves and removes routes in a network namespace
// of its own, next to a route that is not Shoal's.
func TestSyncInNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	h := newNS(t)
	link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "lan1"}
	if err := h.LinkAdd(link); err != nil {
		t.Fatal(err)
	}
	peer, err := h.LinkByName("lan1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.168.77.2/24")
	if err := h.AddrAdd(link, addr); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	foreign := &netlink.Route{Dst: &net.IPNet{IP: net.IPv4(10, 9, 0, 0).To4(), Mask: net.CIDRMask(24, 32)},
		Gw: net.IPv4(192, 168, 77, 99).To4(), Protocol: unix.RTPROT_STATIC}
	if err := h.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	tab := NewAt(h)
	self := Peer{Name: "a", Addr: "192.168.77.2", PodCIDR: "10.244.1.0/24"}
	b := Peer{Name: "b", Addr: "192.168.77.3", PodCIDR: "10.244.2.0/24"}
	c := Peer{Name: "c", Addr: "192.168.77.4", PodCIDR: "10.244.3.0/24"}
	far := Peer{Name: "far", Addr: "192.168.99.4", PodCIDR: "10.244.8.0/24"} // not on the LAN

	added, deleted, err := tab.Sync(Plan(self, []Peer{self, b, c, far}))
	if err == nil {
		t.Fatal("a route via an unreachable gateway was accepted")
	}
	if len(added) != 2 || len(deleted) != 0 {
		t.Fatalf("first sync: added %v, deleted %v", added, deleted)
	}
	checkRoutes(t, h, tab, map[string]string{"10.244.2.0/24": "192.168.77.3", "10.244.3.0/24": "192.168.77.4"})

	// c leaves; b's address changes.
	b.Addr = "192.168.77.5"
	if _, _, err := tab.Sync(Plan(self, []Peer{self, b})); err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, h, tab, map[string]string{"10.244.2.0/24": "192.168.77.5"})

	// Everybody else gone: no route of Shoal's is left, the other stays.
	if _, _, err := tab.Sync(nil); err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, h, tab, map[string]string{})
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: unix.RTPROT_STATIC}, netlink.RT_FILTER_PROTOCOL)
	if err != nil || len(rs) != 1 {
		t.Fatalf("the route that is not Shoal's: %v, %v", rs, err)
	}
}

func checkRoutes(t *testing.T, h *netlink.Handle, tab *Table, want map[string]string) {
	t.Helper()
	got, err := tab.List()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, r := range got {
		have[r.Dst.String()] = r.Via.String()
	}
	if len(have) != len(want) {
		t.Fatalf("routes %v, want %v", have, want)
	}
	for dst, via := range want {
		if have[dst] != via {
			t.Fatalf("routes %v, want %v", have, want)
		}
		// The kernel routes through it.
		rs, err := h.RouteGet(net.ParseIP(netip.MustParsePrefix(dst).Addr().Next().String()))
		if err != nil || len(rs) == 0 || rs[0].Gw.String() != via {
			t.Fatalf("route get into %s: %v, %v; want via %s", dst, rs, err, via)
		}
	}
}

// newNS returns a handle on a new network namespace, closed with the test.
func newNS(t *testing.T) *netlink.Handle {
	t.Helper()
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
	})
	return h
}
