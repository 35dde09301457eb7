package dns

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func TestRespond(t *testing.T) {
	rec := NewRecords("cluster.local", testServices(), testPods())
	withEDNS := func(m *dns.Msg, version uint8, do bool) *dns.Msg {
		m.SetEdns0(4096, do)
		m.IsEdns0().SetVersion(version)
		return m
	}
	tests := []struct {
		name    string
		req     *dns.Msg
		forward bool
		rcode   int
		aa      bool
		answers int
		wantOPT bool
		wantDO  bool
	}{
		{name: "local answer", req: query("web.default.svc.cluster.local.", dns.TypeA), rcode: dns.RcodeSuccess, aa: true, answers: 1},
		{name: "NXDOMAIN is authoritative", req: query("nope.default.svc.cluster.local.", dns.TypeA), rcode: dns.RcodeNameError, aa: true},
		{name: "outside the zone is forwarded", req: query("example.org.", dns.TypeA), forward: true},
		{name: "EDNS answered with EDNS, DO copied", req: withEDNS(query("web.default.svc.cluster.local.", dns.TypeA), 0, true),
			rcode: dns.RcodeSuccess, aa: true, answers: 1, wantOPT: true, wantDO: true},
		{name: "unknown EDNS version", req: withEDNS(query("web.default.svc.cluster.local.", dns.TypeA), 1, false),
			rcode: dns.RcodeBadVers, wantOPT: true},
		{name: "no question", req: &dns.Msg{}, rcode: dns.RcodeFormatError},
		{name: "two questions", req: func() *dns.Msg {
			m := query("a.cluster.local.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}(), rcode: dns.RcodeFormatError},
		{name: "a response", req: func() *dns.Msg {
			m := query("web.default.svc.cluster.local.", dns.TypeA)
			m.Response = true
			return m
		}(), rcode: dns.RcodeFormatError},
		{name: "not a query", req: func() *dns.Msg {
			m := query("web.default.svc.cluster.local.", dns.TypeA)
			m.Opcode = dns.OpcodeUpdate
			return m
		}(), rcode: dns.RcodeNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Id = 4242
			resp, forward := respond(rec, tt.req, 5)
			if forward != tt.forward {
				t.Fatalf("forward = %v, want %v", forward, tt.forward)
			}
			if forward {
				if resp != nil {
					t.Fatalf("forwarded query got a local reply %v", resp)
				}
				return
			}
			if resp.Id != 4242 || !resp.Response {
				t.Errorf("reply id %d response %v, want id 4242 and QR set", resp.Id, resp.Response)
			}
			if resp.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
			}
			if resp.Authoritative != tt.aa {
				t.Errorf("AA = %v, want %v", resp.Authoritative, tt.aa)
			}
			if len(resp.Answer) != tt.answers {
				t.Errorf("answers = %v, want %d", resp.Answer, tt.answers)
			}
			opt := resp.IsEdns0()
			if (opt != nil) != tt.wantOPT {
				t.Errorf("OPT present = %v, want %v", opt != nil, tt.wantOPT)
			}
			if opt != nil && opt.Do() != tt.wantDO {
				t.Errorf("DO = %v, want %v", opt.Do(), tt.wantDO)
			}
			if _, err := resp.Pack(); err != nil {
				t.Errorf("reply does not pack: %v", err)
			}
		})
	}
}

// bigHeadless is a headless service with n ready endpoints, too many for a
// 512-byte UDP reply.
func bigHeadless(n int) Service {
	s := Service{Name: "big", Namespace: "default", Headless: true}
	for i := range n {
		s.Endpoints = append(s.Endpoints, Endpoint{IP: netip.AddrFrom4([4]byte{10, 2, byte(i / 250), byte(i%250 + 1)}), Ready: true})
	}
	return s
}

func TestFitUDP(t *testing.T) {
	rec := NewRecords("cluster.local", append(testServices(), bigHeadless(100)), nil)
	tests := []struct {
		name      string
		qname     string
		edns      uint16 // 0 for no EDNS
		truncated bool
		maxLen    int
	}{
		{name: "small answer fits 512", qname: "web.default.svc.cluster.local.", truncated: false, maxLen: 512},
		{name: "big answer without EDNS", qname: "big.default.svc.cluster.local.", truncated: true, maxLen: 512},
		{name: "big answer with EDNS 1232", qname: "big.default.svc.cluster.local.", edns: 1232, truncated: true, maxLen: 1232},
		{name: "client buffer above our cap", qname: "big.default.svc.cluster.local.", edns: 65000, truncated: true, maxLen: maxUDPSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := query(tt.qname, dns.TypeA)
			if tt.edns != 0 {
				req.SetEdns0(tt.edns, false)
			}
			resp, forward := respond(rec, req, 5)
			if forward {
				t.Fatal("cluster name forwarded")
			}
			fitUDP(resp, req)
			wire, err := resp.Pack()
			if err != nil {
				t.Fatalf("pack: %v", err)
			}
			if resp.Truncated != tt.truncated {
				t.Errorf("TC = %v, want %v (%d answers)", resp.Truncated, tt.truncated, len(resp.Answer))
			}
			if len(wire) > tt.maxLen {
				t.Errorf("reply is %d bytes, want at most %d", len(wire), tt.maxLen)
			}
		})
	}
}

func ExampleRecords_Answer() {
	rec := NewRecords("cluster.local", []Service{{
		Name: "web", Namespace: "default",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
	}}, nil)
	res := rec.Answer(dns.Question{Name: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, 5)
	fmt.Println(res.Local, dns.RcodeToString[res.Rcode], res.Answer[0].(*dns.A).A)
	// Output: true NOERROR 10.96.0.10
}
