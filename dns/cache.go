package dns

import (
	"container/list"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxNegativeTTL caps how long an upstream NXDOMAIN or NODATA is cached, so
// a name created upstream is seen soon.
const maxNegativeTTL = 30 * time.Second

// cacheKey identifies a forwarded question; the name is lowercased.
type cacheKey struct {
	name   string
	qtype  uint16
	qclass uint16
}

func keyOf(q dns.Question) cacheKey {
	return cacheKey{lowerASCII(q.Name), q.Qtype, q.Qclass}
}

// cache holds upstream replies for as long as their records live, evicting
// the least recently used beyond max entries. Times are passed in, so tests
// need no clock.
type cache struct {
	mu    sync.Mutex
	max   int
	lru   *list.List // of *cacheEntry, most recently used first
	items map[cacheKey]*list.Element
}

type cacheEntry struct {
	key                cacheKey
	rcode              int
	answer, ns, extra  []dns.RR
	stored, expires    time.Time
	recursionAvailable bool
	authenticatedData  bool
}

func newCache(max int) *cache {
	return &cache{max: max, lru: list.New(), items: make(map[cacheKey]*list.Element)}
}

// cacheTTL is how long reply may be cached, 0 for not at all: the smallest
// answer TTL, or for a negative reply the SOA's negative TTL (RFC 2308)
// capped at maxNegativeTTL. Failures and truncated replies are not cached.
func cacheTTL(reply *dns.Msg) time.Duration {
	if reply.Truncated || (reply.Rcode != dns.RcodeSuccess && reply.Rcode != dns.RcodeNameError) {
		return 0
	}
	if reply.Rcode == dns.RcodeSuccess && len(reply.Answer) > 0 {
		ttl := reply.Answer[0].Header().Ttl
		for _, rr := range reply.Answer[1:] {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return time.Duration(ttl) * time.Second
	}
	for _, rr := range reply.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			return min(ttl, maxNegativeTTL)
		}
	}
	return 0 // a negative reply without SOA says nothing of its lifetime
}

// put stores reply under key at now, if it may be cached.
func (c *cache) put(key cacheKey, reply *dns.Msg, now time.Time) {
	ttl := cacheTTL(reply)
	if c == nil || c.max <= 0 || ttl <= 0 {
		return
	}
	e := &cacheEntry{
		key:                key,
		rcode:              reply.Rcode,
		answer:             copyRRs(reply.Answer),
		ns:                 copyRRs(reply.Ns),
		extra:              copyRRs(reply.Extra),
		stored:             now,
		expires:            now.Add(ttl),
		recursionAvailable: reply.RecursionAvailable,
		authenticatedData:  reply.AuthenticatedData,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cacheEntry)
		delete(c.items, old.key)
	}
}

// get returns the reply cached under key at now, with each TTL lowered by
// the time it has spent in the cache.
func (c *cache) get(key cacheKey, now time.Time) (*dns.Msg, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	el, ok := c.items[key]
	if !ok {
		c.mu.Unlock()
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.items, key)
		c.mu.Unlock()
		return nil, false
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	// Entries are never modified once stored, so they are read unlocked.
	age := uint32(now.Sub(e.stored) / time.Second)
	m := new(dns.Msg)
	m.Rcode = e.rcode
	m.RecursionAvailable = e.recursionAvailable
	m.AuthenticatedData = e.authenticatedData
	m.Answer, m.Ns, m.Extra = agedRRs(e.answer, age), agedRRs(e.ns, age), agedRRs(e.extra, age)
	return m, true
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// copyRRs deep-copies rrs, leaving out OPT records, which belong to one hop.
func copyRRs(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, dns.Copy(rr))
	}
	return out
}

func agedRRs(rrs []dns.RR, age uint32) []dns.RR {
	out := make([]dns.RR, 0, len(rrs))
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		h := rr.Header()
		h.Ttl = max(h.Ttl, age) - age
		out = append(out, rr)
	}
	return out
}
