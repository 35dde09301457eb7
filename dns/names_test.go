package dns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestReverseAddr(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" when not an address
	}{
		{name: "IPv4", in: "4.3.2.1.in-addr.arpa.", want: "1.2.3.4"},
		{name: "IPv4 zero octets", in: "0.0.0.10.in-addr.arpa.", want: "10.0.0.0"},
		{name: "IPv4 partial", in: "3.2.1.in-addr.arpa.", want: ""},
		{name: "IPv4 too long", in: "5.4.3.2.1.in-addr.arpa.", want: ""},
		{name: "IPv4 octet too big", in: "256.3.2.1.in-addr.arpa.", want: ""},
		{name: "IPv4 leading zero", in: "04.3.2.1.in-addr.arpa.", want: ""},
		{name: "IPv4 sign", in: "+4.3.2.1.in-addr.arpa.", want: ""},
		{name: "IPv4 empty label", in: ".3.2.1.in-addr.arpa.", want: ""},
		{name: "IPv6", in: mustReverse(t, "2001:db8::1"), want: "2001:db8::1"},
		{name: "IPv6 partial", in: "8.b.d.0.1.0.0.2.ip6.arpa.", want: ""},
		{name: "IPv6 bad nibble", in: "g" + mustReverse(t, "2001:db8::1")[1:], want: ""},
		{name: "not reverse", in: "example.org.", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := reverseAddr(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("reverseAddr(%q) = %s, want not an address", tt.in, got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("reverseAddr(%q) = %s, %v; want %s", tt.in, got, ok, tt.want)
			}
		})
	}
}

// TestReverseAddrRoundTrip checks reverseAddr inverts miekg's ReverseAddr,
// which is what clients use to build PTR queries.
func TestReverseAddrRoundTrip(t *testing.T) {
	for _, s := range []string{"10.96.0.1", "255.255.255.255", "0.0.0.0", "fd00::1:5", "::1", "2001:db8:ffff::abcd"} {
		name, err := dns.ReverseAddr(s)
		if err != nil {
			t.Fatalf("ReverseAddr(%s): %v", s, err)
		}
		got, ok := reverseAddr(name)
		if !ok || got != netip.MustParseAddr(s) {
			t.Errorf("reverseAddr(%q) = %s, %v; want %s", name, got, ok, s)
		}
	}
}

func TestDashedIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.1.2.3", "10-1-2-3"},
		{"::ffff:10.1.2.3", "10-1-2-3"},
		{"2001:db8::1", "2001-db8--1"},
	}
	for _, tt := range tests {
		if got := dashedIP(netip.MustParseAddr(tt.in)); got != tt.want {
			t.Errorf("dashedIP(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsLabel(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"web", true}, {"db-0", true}, {"0abc", true},
		{"", false}, {"-web", false}, {"web-", false}, {"we.b", false}, {"Web", false}, {"we_b", false},
		{string(make([]byte, 64)), false},
	}
	for _, tt := range tests {
		if got := isLabel(tt.in); got != tt.want {
			t.Errorf("isLabel(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestLowerASCII(t *testing.T) {
	for in, want := range map[string]string{"WeB.Default.": "web.default.", "abc": "abc", "\xff\xfeA": "\xff\xfea"} {
		if got := lowerASCII(in); got != want {
			t.Errorf("lowerASCII(%q) = %q, want %q", in, got, want)
		}
	}
}
