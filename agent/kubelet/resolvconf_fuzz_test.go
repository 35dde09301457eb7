package kubelet

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzParseResolvConf: the node's resolv.conf is outside input. Whatever it
// holds, what the kubelet renders from it parses back to the same thing.
func FuzzParseResolvConf(f *testing.F) {
	f.Add([]byte("nameserver 10.0.0.1\nsearch a.example b.example\noptions ndots:2 rotate\n"))
	f.Add([]byte("# comment\n; other\ndomain x\nsearch .\nnameserver\n"))
	f.Add([]byte("search a\nsearch b\r\nnameserver ::1 extra\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc := parseResolvConf(b)
		out := rc.render()
		again := parseResolvConf(out)
		if !slices.Equal(rc.Nameservers, again.Nameservers) || !slices.Equal(rc.Searches, again.Searches) || !slices.Equal(rc.Options, again.Options) {
			t.Fatalf("render of %q is %q, which parses differently: %+v vs %+v", b, out, rc, again)
		}
		if !bytes.Equal(again.render(), out) {
			t.Fatalf("render not stable for %q", b)
		}
	})
}
