package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// errNoUpstream is why a forwarded query failed when no upstream is
// configured.
var errNoUpstream = errors.New("no upstream configured")

// forwarder sends the questions the snapshot does not own to upstream
// resolvers, through a cache.
type forwarder struct {
	upstreams []string
	timeout   time.Duration // per exchange with one upstream
	cache     *cache        // nil when disabled
	now       func() time.Time
	log       *slog.Logger
}

// forward answers req, whose question is outside the snapshot, from the
// cache or the first upstream that answers; SERVFAIL when none does.
func (f *forwarder) forward(ctx context.Context, req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	key := keyOf(q)
	if m, ok := f.cache.get(key, f.now()); ok {
		return relay(req, m)
	}
	up, err := f.exchange(ctx, req)
	if err != nil {
		f.log.Debug("forward failed", "name", q.Name, "type", dns.TypeToString[q.Qtype], "err", err)
		return errorReply(req, dns.RcodeServerFailure)
	}
	f.cache.put(key, up, f.now())
	return relay(req, up)
}

// exchange asks each upstream in turn, over UDP and again over TCP when the
// UDP reply is truncated, and returns the first usable reply.
func (f *forwarder) exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Qtype)
	m.Question[0].Qclass = q.Qclass
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	// DO stays unset: cluster clients do not validate DNSSEC, and the cache
	// key does not distinguish replies with signatures.
	m.SetEdns0(maxUDPSize, false)

	err := errNoUpstream
	for _, addr := range f.upstreams {
		var reply *dns.Msg
		reply, err = f.try(ctx, m, addr, "udp")
		if err == nil && reply.Truncated {
			reply, err = f.try(ctx, m, addr, "tcp")
		}
		if err == nil {
			return reply, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// try does one exchange with one upstream and checks the reply is one to
// relay: for our question, and not a failure another upstream might not
// share.
func (f *forwarder) try(ctx context.Context, m *dns.Msg, addr, network string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: f.timeout}
	reply, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		return nil, fmt.Errorf("ask %s over %s: %w", addr, network, err)
	}
	q := m.Question[0]
	if len(reply.Question) != 1 || !strings.EqualFold(reply.Question[0].Name, q.Name) ||
		reply.Question[0].Qtype != q.Qtype || reply.Question[0].Qclass != q.Qclass {
		return nil, fmt.Errorf("ask %s over %s: reply is for another question", addr, network)
	}
	if reply.Rcode == dns.RcodeServerFailure || reply.Rcode == dns.RcodeRefused || reply.Rcode > 0xF {
		// Extended rcodes concern the EDNS between us and the upstream.
		return nil, fmt.Errorf("ask %s over %s: upstream answered %s", addr, network, dns.RcodeToString[reply.Rcode])
	}
	return reply, nil
}

// relay is the reply to req carrying upstream's answer. Owner names equal
// to the question get its spelling, as a cached answer may have been asked
// for in another case.
func relay(req, upstream *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Rcode = upstream.Rcode
	resp.RecursionAvailable = upstream.RecursionAvailable
	resp.AuthenticatedData = upstream.AuthenticatedData
	qname := req.Question[0].Name
	respell := func(rrs []dns.RR) []dns.RR {
		out := copyRRs(rrs)
		for _, rr := range out {
			if h := rr.Header(); h.Name != qname && strings.EqualFold(h.Name, qname) {
				h.Name = qname
			}
		}
		return out
	}
	resp.Answer, resp.Ns, resp.Extra = respell(upstream.Answer), respell(upstream.Ns), respell(upstream.Extra)
	addOPT(resp, req)
	return resp
}
