package dns

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// UpstreamsFromResolvConf reads the nameserver lines of a resolv.conf (the
// node's own, not a pod's) as ip:53 upstreams, in file order. listen is the
// server's own ip:port ("" if unknown): a loopback nameserver with the same
// IP is this server and is skipped, so queries do not loop; other loopback
// resolvers (a local systemd-resolved, dnsmasq) are kept. Lines that are
// not "nameserver <ip>" are ignored, as the C resolver does.
func UpstreamsFromResolvConf(path, listen string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read upstreams from %s: %w", path, err)
	}
	defer f.Close()

	var self netip.Addr
	if ap, err := netip.ParseAddrPort(listen); err == nil {
		self = ap.Addr().Unmap()
	}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue // the C resolver ignores such lines too
		}
		if ip.IsLoopback() && ip.Unmap().WithZone("") == self.WithZone("") {
			continue
		}
		out = append(out, net.JoinHostPort(ip.String(), "53"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read upstreams from %s: %w", path, err)
	}
	return out, nil
}
