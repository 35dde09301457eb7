package dns

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary wire messages through the path serveDNS
// takes (respond, else the forwarder, then fitUDP) and checks it never
// panics and always produces a reply that packs within the client's UDP
// buffer. The forwarder has no upstream, so no packet leaves the test.
func FuzzServeDNS(f *testing.F) {
	seeds := []*dns.Msg{
		query("web.default.svc.cluster.local.", dns.TypeA),
		query("_pg._tcp.db.prod.svc.cluster.local.", dns.TypeSRV),
		query("ext.default.svc.cluster.local.", dns.TypeANY),
		query("10.0.96.10.in-addr.arpa.", dns.TypePTR),
		query("big.default.svc.cluster.local.", dns.TypeA),
		query("example.org.", dns.TypeMX),
	}
	edns := query("DB-0.db.prod.svc.cluster.local.", dns.TypeA)
	edns.SetEdns0(1232, true)
	seeds = append(seeds, edns)
	for _, m := range seeds {
		wire, err := m.Pack()
		if err != nil {
			f.Fatalf("pack seed %v: %v", m.Question, err)
		}
		f.Add(wire)
	}

	rec := NewRecords("cluster.local", append(testServices(), bigHeadless(60)), testPods())
	fwd := &forwarder{now: time.Now, log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, wire []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(wire); err != nil {
			t.Skip("not a DNS message")
		}
		resp, forward := respond(rec, req, 5)
		if forward {
			if resp != nil || len(req.Question) != 1 {
				t.Fatalf("forwarded with reply %v and %d questions", resp, len(req.Question))
			}
			resp = fwd.forward(context.Background(), req)
		}
		if resp == nil {
			t.Fatal("no reply")
		}
		if _, err := resp.Copy().Pack(); err != nil {
			t.Fatalf("TCP reply to %v does not pack: %v", req.Question, err)
		}
		fitUDP(resp, req)
		out, err := resp.Pack()
		if err != nil {
			t.Fatalf("UDP reply to %v does not pack: %v", req.Question, err)
		}
		if len(out) > udpSize(req) {
			t.Fatalf("UDP reply is %d bytes, over the client's %d", len(out), udpSize(req))
		}
		if resp.Id != req.Id || !resp.Response {
			t.Fatalf("reply id %d QR %v to query id %d", resp.Id, resp.Response, req.Id)
		}
	})
}
