package dns

import (
	"net/netip"

	"github.com/miekg/dns"
)

// Result is a snapshot's reply to one question.
type Result struct {
	Rcode             int
	Answer, Ns, Extra []dns.RR
	// Local is false when the question is not the snapshot's to answer (a
	// name outside the zone, or the reverse name of an IP it does not
	// know): the caller forwards it upstream and ignores the rest.
	Local bool
}

// SOA timers. Nothing transfers this zone, so only the minimum (the negative
// caching TTL, set to the record TTL) matters to resolvers.
const (
	soaSerial  = 1
	soaRefresh = 7200
	soaRetry   = 1800
	soaExpire  = 86400
)

// Answer answers q from the snapshot, with ttl on every record. Record owner
// names keep the spelling of q.Name, which resolvers that randomise case
// check; lookups ignore case. It does no IO and never chases CNAMEs.
func (r *Records) Answer(q dns.Question, ttl uint32) Result {
	owner := dns.Fqdn(q.Name)
	name := lowerASCII(owner)
	inClass := q.Qclass == dns.ClassINET || q.Qclass == dns.ClassANY

	if ip, ok := reverseAddr(name); ok {
		targets := r.ptrs[ip]
		if len(targets) == 0 || !inClass || (q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY) {
			// The reverse zones are not ours: only a PTR we know is.
			return Result{}
		}
		res := Result{Local: true}
		for _, t := range targets {
			res.Answer = append(res.Answer, &dns.PTR{Hdr: header(owner, dns.TypePTR, ttl), Ptr: t})
		}
		return res
	}
	if !dns.IsSubDomain(r.domain, name) {
		return Result{}
	}
	if !inClass {
		return Result{Rcode: dns.RcodeRefused, Local: true}
	}
	n, ok := r.names[name]
	if !ok {
		return Result{Rcode: dns.RcodeNameError, Ns: []dns.RR{r.soa(r.domain, ttl)}, Local: true}
	}
	res := Result{Local: true, Answer: r.records(n, name == r.domain, owner, q.Qtype, ttl)}
	if len(res.Answer) == 0 {
		res.Ns = []dns.RR{r.soa(r.domain, ttl)} // NODATA
		return res
	}
	res.Extra = r.srvAddresses(res.Answer, ttl)
	return res
}

// records is the data of n of type qtype (every type for ANY) as RRs.
func (r *Records) records(n *node, apex bool, owner string, qtype uint16, ttl uint32) []dns.RR {
	if n.cname != "" {
		// A CNAME excludes all other data at its name, whatever was asked.
		return []dns.RR{&dns.CNAME{Hdr: header(owner, dns.TypeCNAME, ttl), Target: n.cname}}
	}
	anyType := qtype == dns.TypeANY
	var out []dns.RR
	if anyType || qtype == dns.TypeA || qtype == dns.TypeAAAA {
		out = appendAddrs(out, n.addrs, owner, qtype, ttl)
	}
	if anyType || qtype == dns.TypeSRV {
		for _, s := range n.srvs {
			out = append(out, &dns.SRV{Hdr: header(owner, dns.TypeSRV, ttl),
				Priority: 0, Weight: 100, Port: s.port, Target: s.target})
		}
	}
	if anyType || qtype == dns.TypeTXT {
		if len(n.txt) > 0 {
			out = append(out, &dns.TXT{Hdr: header(owner, dns.TypeTXT, ttl), Txt: n.txt})
		}
	}
	if apex && (anyType || qtype == dns.TypeSOA) {
		out = append(out, r.soa(owner, ttl))
	}
	return out
}

// appendAddrs appends the A (qtype A), AAAA (qtype AAAA) or both (any other
// qtype) records of addrs.
func appendAddrs(out []dns.RR, addrs []netip.Addr, owner string, qtype uint16, ttl uint32) []dns.RR {
	for _, ip := range addrs {
		switch {
		case ip.Is4() && qtype != dns.TypeAAAA:
			out = append(out, &dns.A{Hdr: header(owner, dns.TypeA, ttl), A: ip.AsSlice()})
		case ip.Is6() && qtype != dns.TypeA:
			out = append(out, &dns.AAAA{Hdr: header(owner, dns.TypeAAAA, ttl), AAAA: ip.AsSlice()})
		}
	}
	return out
}

// srvAddresses is the additional section for the SRV records in answer: the
// addresses of their targets, so clients need no second lookup.
func (r *Records) srvAddresses(answer []dns.RR, ttl uint32) []dns.RR {
	var extra []dns.RR
	seen := make(map[string]bool)
	for _, rr := range answer {
		s, ok := rr.(*dns.SRV)
		if !ok || seen[s.Target] {
			continue
		}
		seen[s.Target] = true
		if n := r.names[s.Target]; n != nil {
			extra = appendAddrs(extra, n.addrs, s.Target, dns.TypeANY, ttl)
		}
	}
	return extra
}

func (r *Records) soa(owner string, ttl uint32) dns.RR {
	return &dns.SOA{
		Hdr:     header(owner, dns.TypeSOA, ttl),
		Ns:      "ns.dns." + r.domain,
		Mbox:    "hostmaster." + r.domain,
		Serial:  soaSerial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  ttl,
	}
}

func header(owner string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}
