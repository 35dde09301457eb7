package dns

import (
	"net/netip"
	"strconv"
	"strings"
)

// lowerASCII lowercases only A-Z: DNS names compare case-insensitively in
// ASCII alone (RFC 4343), and strings.ToLower would rewrite invalid UTF-8.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// isLabel reports whether s is an RFC 1123 label (lowercase letters, digits
// and inner hyphens), the shape of every object name Shoal puts in a DNS
// name. Anything else is skipped rather than served under a broken name.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// dashedIP is the one-label form of an IP used in pod and headless endpoint
// names: 10.1.2.3 becomes 10-1-2-3 and 2001:db8::1 becomes 2001-db8--1.
func dashedIP(ip netip.Addr) string {
	s := ip.Unmap().WithZone("").String()
	if ip.Unmap().Is4() {
		return strings.ReplaceAll(s, ".", "-")
	}
	return strings.ReplaceAll(s, ":", "-")
}

const (
	reverseV4 = ".in-addr.arpa."
	reverseV6 = ".ip6.arpa."
)

// reverseAddr parses a complete reverse-lookup name (lowercase, fully
// qualified) back into the IP it names. Partial names such as
// "10.in-addr.arpa." are not addresses and give false.
func reverseAddr(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, reverseV4):
		labels := strings.Split(strings.TrimSuffix(name, reverseV4), ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			// Reject forms ParseUint accepts but an octet label must not
			// have: signs, and leading zeros that would alias another name.
			if l == "" || len(l) > 3 || (len(l) > 1 && l[0] == '0') || l[0] == '+' {
				return netip.Addr{}, false
			}
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	case strings.HasSuffix(name, reverseV6):
		labels := strings.Split(strings.TrimSuffix(name, reverseV6), ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			n, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			// Label i is nibble 31-i, counting from the most significant.
			pos := 31 - i
			if pos%2 == 0 {
				b[pos/2] |= byte(n) << 4
			} else {
				b[pos/2] |= byte(n)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
