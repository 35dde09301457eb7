package proxy

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureLocalRoute makes every address of cidr local to this host, as
// `ip route replace local CIDR dev lo table local` does, so listeners on
// ClusterIPs receive what is sent to them. It is idempotent; agents on one
// host share the route, and it is left in place when an agent stops
// (remove it with `ip route del local CIDR dev lo table local`).
func EnsureLocalRoute(cidr netip.Prefix) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("local route for %s: %w", cidr, err)
	}
	cidr = cidr.Masked()
	r := &netlink.Route{
		LinkIndex: lo.Attrs().Index,
		Dst:       &net.IPNet{IP: cidr.Addr().AsSlice(), Mask: net.CIDRMask(cidr.Bits(), cidr.Addr().BitLen())},
		Type:      unix.RTN_LOCAL,
		Table:     unix.RT_TABLE_LOCAL,
		Scope:     unix.RT_SCOPE_HOST,
		Protocol:  unix.RTPROT_STATIC,
	}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("local route for %s on lo: %w", cidr, err)
	}
	return nil
}
