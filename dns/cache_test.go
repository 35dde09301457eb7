package dns

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return rr
}

func TestCacheTTL(t *testing.T) {
	soa := func(ttl, minttl int) string {
		return fmt.Sprintf("example.org. %d IN SOA ns.example.org. h.example.org. 1 2 3 4 %d", ttl, minttl)
	}
	tests := []struct {
		name   string
		rcode  int
		tc     bool
		answer []string
		ns     []string
		want   time.Duration
	}{
		{name: "smallest answer TTL", answer: []string{"a.example. 60 IN A 192.0.2.1", "a.example. 40 IN A 192.0.2.2"}, want: 40 * time.Second},
		{name: "zero TTL is not cached", answer: []string{"a.example. 0 IN A 192.0.2.1"}, want: 0},
		{name: "NXDOMAIN by SOA minimum", rcode: dns.RcodeNameError, ns: []string{soa(3600, 10)}, want: 10 * time.Second},
		{name: "NXDOMAIN by SOA TTL when lower", rcode: dns.RcodeNameError, ns: []string{soa(7, 600)}, want: 7 * time.Second},
		{name: "negative capped", rcode: dns.RcodeNameError, ns: []string{soa(3600, 3600)}, want: maxNegativeTTL},
		{name: "NODATA by SOA", ns: []string{soa(3600, 20)}, want: 20 * time.Second},
		{name: "negative without SOA", rcode: dns.RcodeNameError, want: 0},
		{name: "SERVFAIL never", rcode: dns.RcodeServerFailure, ns: []string{soa(60, 60)}, want: 0},
		{name: "truncated never", tc: true, answer: []string{"a.example. 60 IN A 192.0.2.1"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &dns.Msg{}
			m.Rcode, m.Truncated = tt.rcode, tt.tc
			for _, s := range tt.answer {
				m.Answer = append(m.Answer, mustRR(t, s))
			}
			for _, s := range tt.ns {
				m.Ns = append(m.Ns, mustRR(t, s))
			}
			if got := cacheTTL(m); got != tt.want {
				t.Errorf("cacheTTL = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCacheAgesAndExpires(t *testing.T) {
	c := newCache(10)
	t0 := time.Unix(1_000_000, 0)
	key := cacheKey{"a.example.", dns.TypeA, dns.ClassINET}
	m := &dns.Msg{Answer: []dns.RR{mustRR(t, "a.example. 60 IN A 192.0.2.1")}}
	m.SetEdns0(1232, false)
	c.put(key, m, t0)
	m.Answer[0].Header().Ttl = 1 // the cache must hold its own copy

	got, ok := c.get(key, t0.Add(15*time.Second+500*time.Millisecond))
	if !ok {
		t.Fatal("entry missing 15s into a 60s TTL")
	}
	if ttl := got.Answer[0].Header().Ttl; ttl != 45 {
		t.Errorf("TTL after 15.5s = %d, want 45", ttl)
	}
	if got.IsEdns0() != nil {
		t.Error("cached reply kept the upstream's OPT record")
	}
	if _, ok := c.get(key, t0.Add(60*time.Second)); ok {
		t.Error("entry still served at its expiry")
	}
	if c.len() != 0 {
		t.Errorf("expired entry kept: %d entries", c.len())
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCache(2)
	now := time.Unix(1_000_000, 0)
	key := func(n string) cacheKey { return cacheKey{n, dns.TypeA, dns.ClassINET} }
	put := func(n string) {
		c.put(key(n), &dns.Msg{Answer: []dns.RR{mustRR(t, n+" 60 IN A 192.0.2.1")}}, now)
	}
	put("a.")
	put("b.")
	if _, ok := c.get(key("a."), now); !ok { // a is now the most recently used
		t.Fatal("a. missing")
	}
	put("c.")
	if _, ok := c.get(key("b."), now); ok {
		t.Error("b. kept, want it evicted as least recently used")
	}
	for _, n := range []string{"a.", "c."} {
		if _, ok := c.get(key(n), now); !ok {
			t.Errorf("%s evicted", n)
		}
	}
	if c.len() != 2 {
		t.Errorf("cache holds %d entries, want its bound 2", c.len())
	}
}

func TestNilCacheIsDisabled(t *testing.T) {
	var c *cache
	c.put(cacheKey{}, &dns.Msg{Answer: []dns.RR{mustRR(t, "a. 60 IN A 192.0.2.1")}}, time.Now())
	if _, ok := c.get(cacheKey{}, time.Now()); ok {
		t.Fatal("nil cache returned an entry")
	}
}
