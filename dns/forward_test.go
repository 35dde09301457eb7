package dns

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeUpstream is a resolver on a free loopback port, over UDP and TCP,
// that counts the queries it gets. It knows:
//   - example.org. A 192.0.2.1, TTL 60
//   - big.example.org. A 192.0.2.7, but over UDP only a truncated reply
//   - anything else: NXDOMAIN with an SOA whose minimum is 60
type fakeUpstream struct {
	addr string

	mu      sync.Mutex
	queries map[string]int // by "network name"
}

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{queries: make(map[string]int)}
	pc, ln, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake upstream: %v", err)
	}
	u.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(u.serve)},
		{Listener: ln, Handler: dns.HandlerFunc(u.serve)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.ActivateAndServe(); err != nil {
				t.Errorf("fake upstream stopped: %v", err)
			}
		}()
		select {
		case <-started:
		case <-done:
			t.Fatal("fake upstream did not start")
		case <-time.After(testTimeout):
			t.Fatal("fake upstream did not start in time")
		}
		t.Cleanup(func() {
			if err := srv.Shutdown(); err != nil {
				t.Errorf("stop fake upstream: %v", err)
			}
			<-done
		})
	}
	return u
}

func (u *fakeUpstream) serve(w dns.ResponseWriter, req *dns.Msg) {
	network := "tcp"
	if _, ok := w.LocalAddr().(*net.UDPAddr); ok {
		network = "udp"
	}
	q := req.Question[0]
	u.mu.Lock()
	u.queries[network+" "+strings.ToLower(q.Name)]++
	u.mu.Unlock()

	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	switch strings.ToLower(q.Name) {
	case "example.org.":
		m.Answer = append(m.Answer, mustParse(q.Name+" 60 IN A 192.0.2.1"))
	case "big.example.org.":
		if network == "udp" {
			m.Truncated = true
		} else {
			m.Answer = append(m.Answer, mustParse(q.Name+" 60 IN A 192.0.2.7"))
		}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, mustParse("example.org. 3600 IN SOA ns.example.org. h.example.org. 1 2 3 4 60"))
	}
	w.WriteMsg(m)
}

func (u *fakeUpstream) count(network, name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.queries[network+" "+name]
}

func mustParse(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

// deadAddr is a loopback address nothing listens on: bound, then closed.
func deadAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestForwardCachesAnswers(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, ServerConfig{Upstreams: []string{up.addr}})

	first := ask(t, "udp", s.Addr(), query("example.org.", dns.TypeA))
	if first.Rcode != dns.RcodeSuccess || first.Authoritative {
		t.Fatalf("rcode %s AA %v, want NOERROR, not authoritative", dns.RcodeToString[first.Rcode], first.Authoritative)
	}
	checkRRs(t, "first answer", first.Answer, []string{"example.org. 60 IN A 192.0.2.1"})
	if n := up.count("udp", "example.org."); n != 1 {
		t.Fatalf("upstream got %d queries, want 1", n)
	}

	// Another case and another transport hit the same entry, and the
	// answer is spelled as asked.
	second := ask(t, "tcp", s.Addr(), query("EXAMPLE.org.", dns.TypeA))
	if len(second.Answer) != 1 || second.Answer[0].Header().Name != "EXAMPLE.org." ||
		second.Answer[0].(*dns.A).A.String() != "192.0.2.1" || second.Answer[0].Header().Ttl > 60 {
		t.Fatalf("cached answer = %v, want EXAMPLE.org. A 192.0.2.1 with TTL <= 60", second.Answer)
	}
	if n := up.count("udp", "example.org.") + up.count("tcp", "example.org."); n != 1 {
		t.Fatalf("upstream got %d queries after a cached one, want still 1", n)
	}

	// Another type is another question.
	ask(t, "udp", s.Addr(), query("example.org.", dns.TypeAAAA))
	if n := up.count("udp", "example.org."); n != 2 {
		t.Fatalf("upstream got %d queries after AAAA, want 2", n)
	}
}

func TestForwardPassesNXDOMAIN(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, ServerConfig{Upstreams: []string{up.addr}})
	for range 2 {
		reply := ask(t, "udp", s.Addr(), query("nope.example.org.", dns.TypeA))
		if reply.Rcode != dns.RcodeNameError {
			t.Fatalf("rcode %s, want NXDOMAIN from upstream", dns.RcodeToString[reply.Rcode])
		}
		if len(reply.Ns) != 1 || reply.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("authority = %v, want the upstream SOA", reply.Ns)
		}
	}
	if n := up.count("udp", "nope.example.org."); n != 1 {
		t.Errorf("upstream got %d queries, want 1: the NXDOMAIN is cached", n)
	}
}

func TestForwardRetriesTruncatedOverTCP(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, ServerConfig{Upstreams: []string{up.addr}})
	reply := ask(t, "udp", s.Addr(), query("big.example.org.", dns.TypeA))
	checkRRs(t, "answer", reply.Answer, []string{"big.example.org. 60 IN A 192.0.2.7"})
	if u, tc := up.count("udp", "big.example.org."), up.count("tcp", "big.example.org."); u != 1 || tc != 1 {
		t.Errorf("upstream got %d UDP and %d TCP queries, want 1 and 1", u, tc)
	}
}

func TestForwardUnknownReverseName(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, ServerConfig{Upstreams: []string{up.addr}})
	s.SetRecords(NewRecords("cluster.local", testServices(), testPods()))

	ask(t, "udp", s.Addr(), query("1.2.0.192.in-addr.arpa.", dns.TypePTR))
	if n := up.count("udp", "1.2.0.192.in-addr.arpa."); n != 1 {
		t.Errorf("unknown IP: upstream got %d queries, want 1", n)
	}
	reply := ask(t, "udp", s.Addr(), query("10.0.96.10.in-addr.arpa.", dns.TypePTR))
	checkRRs(t, "cluster IP PTR", reply.Answer, []string{"10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."})
	if n := up.count("udp", "10.0.96.10.in-addr.arpa."); n != 0 {
		t.Errorf("cluster IP: upstream got %d queries, want 0", n)
	}
}

func TestForwardTriesUpstreamsInOrder(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, ServerConfig{Upstreams: []string{deadAddr(t), up.addr}, UpstreamTimeout: time.Second})
	reply := ask(t, "udp", s.Addr(), query("example.org.", dns.TypeA))
	checkRRs(t, "answer", reply.Answer, []string{"example.org. 60 IN A 192.0.2.1"})
}

func TestForwardServfail(t *testing.T) {
	tests := []struct {
		name      string
		upstreams func(t *testing.T) []string
	}{
		{name: "upstream down", upstreams: func(t *testing.T) []string { return []string{deadAddr(t)} }},
		{name: "no upstream", upstreams: func(*testing.T) []string { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, ServerConfig{Upstreams: tt.upstreams(t), UpstreamTimeout: time.Second})
			q := query("example.org.", dns.TypeA)
			q.SetEdns0(1232, false)
			reply := ask(t, "udp", s.Addr(), q)
			if reply.Rcode != dns.RcodeServerFailure {
				t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[reply.Rcode])
			}
			if reply.IsEdns0() == nil {
				t.Error("SERVFAIL to an EDNS query has no OPT")
			}
		})
	}
}
