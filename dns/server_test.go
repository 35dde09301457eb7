package dns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testTimeout bounds every exchange a test makes, so a lost packet fails
// the test instead of hanging it.
const testTimeout = 5 * time.Second

// startServer starts a server on a free loopback port, closed when the test
// ends.
func startServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return s
}

// ask sends m to addr over network ("udp" or "tcp") and returns the reply.
func ask(t *testing.T, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := &dns.Client{Net: network}
	reply, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		t.Fatalf("ask %s over %s for %s: %v", addr, network, m.Question[0].Name, err)
	}
	return reply
}

func TestServerAnswersOverUDPAndTCP(t *testing.T) {
	s := startServer(t, ServerConfig{})
	s.SetRecords(NewRecords("cluster.local", testServices(), testPods()))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			reply := ask(t, network, s.Addr(), query("web.default.svc.cluster.local.", dns.TypeA))
			if reply.Rcode != dns.RcodeSuccess || !reply.Authoritative {
				t.Fatalf("rcode %s AA %v, want NOERROR AA", dns.RcodeToString[reply.Rcode], reply.Authoritative)
			}
			checkRRs(t, "answer", reply.Answer, []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"})

			reply = ask(t, network, s.Addr(), query("nope.default.svc.cluster.local.", dns.TypeA))
			if reply.Rcode != dns.RcodeNameError {
				t.Fatalf("rcode %s, want NXDOMAIN", dns.RcodeToString[reply.Rcode])
			}
			checkRRs(t, "authority", reply.Ns, []string{testSOA})
		})
	}
}

func TestServerTTLFromConfig(t *testing.T) {
	s := startServer(t, ServerConfig{TTL: 42})
	s.SetRecords(NewRecords("cluster.local", testServices(), nil))
	reply := ask(t, "udp", s.Addr(), query("web.default.svc.cluster.local.", dns.TypeA))
	checkRRs(t, "answer", reply.Answer, []string{"web.default.svc.cluster.local. 42 IN A 10.96.0.10"})
}

func TestServerSetRecords(t *testing.T) {
	s := startServer(t, ServerConfig{})
	q := query("web.default.svc.cluster.local.", dns.TypeA)
	if reply := ask(t, "udp", s.Addr(), q); reply.Rcode != dns.RcodeNameError {
		t.Fatalf("before SetRecords: rcode %s, want NXDOMAIN", dns.RcodeToString[reply.Rcode])
	}

	s.SetRecords(NewRecords("cluster.local", testServices(), nil))
	reply := ask(t, "udp", s.Addr(), q)
	checkRRs(t, "answer after SetRecords", reply.Answer, []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"})

	moved := testServices()
	moved[0].ClusterIPs = []netip.Addr{netip.MustParseAddr("10.96.7.7")}
	s.SetRecords(NewRecords("cluster.local", moved, nil))
	reply = ask(t, "tcp", s.Addr(), q)
	checkRRs(t, "answer after second SetRecords", reply.Answer, []string{"web.default.svc.cluster.local. 5 IN A 10.96.7.7"})

	s.SetRecords(NewRecords("other.domain", testServices(), nil))
	reply = ask(t, "udp", s.Addr(), q)
	checkRRs(t, "answer after wrong-domain SetRecords", reply.Answer, []string{"web.default.svc.cluster.local. 5 IN A 10.96.7.7"})

	s.SetRecords(nil)
	if reply := ask(t, "udp", s.Addr(), q); reply.Rcode != dns.RcodeNameError {
		t.Fatalf("after SetRecords(nil): rcode %s, want NXDOMAIN", dns.RcodeToString[reply.Rcode])
	}
}

func TestServerTruncatesUDP(t *testing.T) {
	s := startServer(t, ServerConfig{})
	s.SetRecords(NewRecords("cluster.local", []Service{bigHeadless(100)}, nil))
	q := query("big.default.svc.cluster.local.", dns.TypeA)

	udp := ask(t, "udp", s.Addr(), q)
	if !udp.Truncated || len(udp.Answer) >= 100 {
		t.Fatalf("UDP without EDNS: TC %v with %d answers, want TC and fewer than 100", udp.Truncated, len(udp.Answer))
	}
	tcp := ask(t, "tcp", s.Addr(), q)
	if tcp.Truncated || len(tcp.Answer) != 100 {
		t.Fatalf("TCP: TC %v with %d answers, want all 100", tcp.Truncated, len(tcp.Answer))
	}

	q.SetEdns0(4096, false)
	edns := ask(t, "udp", s.Addr(), q)
	if len(edns.Answer) <= len(udp.Answer) {
		t.Errorf("UDP with EDNS 4096 carried %d answers, no more than the %d without", len(edns.Answer), len(udp.Answer))
	}
}

func TestServerStartAndClose(t *testing.T) {
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if ap, err := netip.ParseAddrPort(addr); err != nil || ap.Port() == 0 {
		t.Fatalf("Addr() = %q, want the bound ip:port", addr)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}

	// The port is taken while we serve, on both transports.
	other, err := NewServer(ServerConfig{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err == nil || !strings.Contains(err.Error(), addr) {
		other.Close()
		t.Fatalf("second server on %s: err %v, want one naming the address", addr, err)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	// Closed means the sockets are released.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP port still held after Close: %v", err)
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("UDP port still held after Close: %v", err)
	}
	pc.Close()
}
