package dns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testServices is a small cluster covering every kind of record: a dual
// stack ClusterIP service, two headless services, an ExternalName, and an
// invalid name that must be skipped.
func testServices() []Service {
	ip := netip.MustParseAddr
	return []Service{
		{
			Name: "web", Namespace: "default",
			ClusterIPs: []netip.Addr{ip("10.96.0.10"), ip("fd00::10")},
			Ports: []Port{
				{Name: "http", Protocol: "TCP", Port: 80},
				{Name: "", Protocol: "TCP", Port: 8080}, // unnamed: no SRV
			},
		},
		{
			Name: "db", Namespace: "prod", Headless: true,
			Ports: []Port{{Name: "pg", Protocol: "TCP", Port: 5432}},
			Endpoints: []Endpoint{
				{IP: ip("10.1.0.5"), Hostname: "db-0", PodName: "db-0", Ready: true,
					Ports: []Port{{Name: "pg", Protocol: "TCP", Port: 15432}}},
				{IP: ip("10.1.0.6"), PodName: "db-1", Ready: true},
				{IP: ip("10.1.0.7"), Hostname: "db-2", PodName: "db-2", Ready: false},
			},
		},
		{
			Name: "peers", Namespace: "prod", Headless: true, PublishNotReady: true,
			Endpoints: []Endpoint{{IP: ip("10.1.0.8"), Hostname: "p-0", Ready: false}},
		},
		{Name: "ext", Namespace: "default", ExternalName: "Example.COM"},
		{Name: "idle", Namespace: "prod", Headless: true,
			Endpoints: []Endpoint{{IP: ip("10.1.0.9"), Hostname: "idle-0", Ready: false}}},
		{Name: "bad_name", Namespace: "default", ClusterIPs: []netip.Addr{ip("10.96.0.99")}},
	}
}

func testPods() []Pod {
	ip := netip.MustParseAddr
	return []Pod{
		{Name: "web-abc", Namespace: "default", IP: ip("10.1.0.20")},
		{Name: "db-0", Namespace: "prod", IP: ip("10.1.0.5")},
		{Name: "v6", Namespace: "default", IP: ip("fd00::1:5")},
		{Name: "no-ip", Namespace: "default"},
	}
}

const testSOA = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"

func TestAnswer(t *testing.T) {
	rec := NewRecords("Cluster.Local", testServices(), testPods())
	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		qclass   uint16 // ClassINET when zero
		notLocal bool
		rcode    int
		answer   []string
		ns       []string
		extra    []string
		ttl      uint32 // 5 when zero
	}{
		{name: "cluster IP A", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}},
		{name: "cluster IP AAAA", qname: "web.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"web.default.svc.cluster.local. 5 IN AAAA fd00::10"}},
		{name: "case kept in owner, ignored in lookup", qname: "WEB.Default.SVC.cluster.LOCAL.", qtype: dns.TypeA,
			answer: []string{"WEB.Default.SVC.cluster.LOCAL. 5 IN A 10.96.0.10"}},
		{name: "configured TTL", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA, ttl: 30,
			answer: []string{"web.default.svc.cluster.local. 30 IN A 10.96.0.10"}},
		{name: "ANY gives both families", qname: "web.default.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10", "web.default.svc.cluster.local. 5 IN AAAA fd00::10"}},
		{name: "cluster IP SRV", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."},
			extra:  []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10", "web.default.svc.cluster.local. 5 IN AAAA fd00::10"}},
		{name: "SRV for a protocol the port does not use", qname: "_http._udp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, ns: []string{testSOA}},
		{name: "protocol label alone is an empty non-terminal", qname: "_tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			ns: []string{testSOA}},
		{name: "headless A lists ready endpoints only", qname: "db.prod.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db.prod.svc.cluster.local. 5 IN A 10.1.0.5", "db.prod.svc.cluster.local. 5 IN A 10.1.0.6"}},
		{name: "headless SRV per endpoint with target port", qname: "_pg._tcp.db.prod.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"_pg._tcp.db.prod.svc.cluster.local. 5 IN SRV 0 100 5432 10-1-0-6.db.prod.svc.cluster.local.",
				"_pg._tcp.db.prod.svc.cluster.local. 5 IN SRV 0 100 15432 db-0.db.prod.svc.cluster.local.",
			},
			extra: []string{
				"10-1-0-6.db.prod.svc.cluster.local. 5 IN A 10.1.0.6",
				"db-0.db.prod.svc.cluster.local. 5 IN A 10.1.0.5",
			}},
		{name: "headless endpoint hostname", qname: "db-0.db.prod.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db-0.db.prod.svc.cluster.local. 5 IN A 10.1.0.5"}},
		{name: "headless endpoint dashed IP", qname: "10-1-0-6.db.prod.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-1-0-6.db.prod.svc.cluster.local. 5 IN A 10.1.0.6"}},
		{name: "not ready endpoint unpublished", qname: "db-2.db.prod.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{testSOA}},
		{name: "publishNotReady publishes not ready", qname: "peers.prod.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"peers.prod.svc.cluster.local. 5 IN A 10.1.0.8"}},
		{name: "publishNotReady hostname", qname: "p-0.peers.prod.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"p-0.peers.prod.svc.cluster.local. 5 IN A 10.1.0.8"}},
		{name: "headless without ready endpoints is NODATA", qname: "idle.prod.svc.cluster.local.", qtype: dns.TypeA,
			ns: []string{testSOA}},
		{name: "headless with no AAAA is NODATA", qname: "db.prod.svc.cluster.local.", qtype: dns.TypeAAAA,
			ns: []string{testSOA}},
		{name: "ExternalName CNAME, not chased", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME example.com."}},
		{name: "ExternalName asked for CNAME", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeCNAME,
			answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME example.com."}},
		{name: "PTR of cluster IP", qname: "10.0.96.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."}},
		{name: "PTR of IPv6 cluster IP", qname: mustReverse(t, "fd00::10"), qtype: dns.TypePTR,
			answer: []string{mustReverse(t, "fd00::10") + " 5 IN PTR web.default.svc.cluster.local."}},
		{name: "PTR of headless endpoint with hostname beats pod name", qname: "5.0.1.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"5.0.1.10.in-addr.arpa. 5 IN PTR db-0.db.prod.svc.cluster.local."}},
		{name: "PTR of pod", qname: "20.0.1.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"20.0.1.10.in-addr.arpa. 5 IN PTR 10-1-0-20.default.pod.cluster.local."}},
		{name: "PTR of headless endpoint without hostname or pod", qname: "6.0.1.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"6.0.1.10.in-addr.arpa. 5 IN PTR 10-1-0-6.db.prod.svc.cluster.local."}},
		{name: "PTR of unknown IP is forwarded", qname: "1.2.0.192.in-addr.arpa.", qtype: dns.TypePTR, notLocal: true},
		{name: "PTR of not ready endpoint is forwarded", qname: "7.0.1.10.in-addr.arpa.", qtype: dns.TypePTR, notLocal: true},
		{name: "non-PTR on known reverse name is forwarded", qname: "10.0.96.10.in-addr.arpa.", qtype: dns.TypeA, notLocal: true},
		{name: "partial reverse name is forwarded", qname: "10.in-addr.arpa.", qtype: dns.TypePTR, notLocal: true},
		{name: "pod A", qname: "10-1-0-20.default.pod.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-1-0-20.default.pod.cluster.local. 5 IN A 10.1.0.20"}},
		{name: "pod AAAA", qname: "fd00--1-5.default.pod.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"fd00--1-5.default.pod.cluster.local. 5 IN AAAA fd00::1:5"}},
		{name: "pod A in another namespace", qname: "10-1-0-20.prod.pod.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{testSOA}},
		{name: "unknown service NXDOMAIN", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{testSOA}},
		{name: "invalid service name skipped", qname: "bad_name.default.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{testSOA}},
		{name: "existing name, missing type is NODATA", qname: "web.default.svc.cluster.local.", qtype: dns.TypeTXT,
			ns: []string{testSOA}},
		{name: "namespace is an empty non-terminal", qname: "default.svc.cluster.local.", qtype: dns.TypeA,
			ns: []string{testSOA}},
		{name: "apex SOA", qname: "cluster.local.", qtype: dns.TypeSOA, answer: []string{testSOA}},
		{name: "schema version", qname: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. 5 IN TXT "1.1.0"`}},
		{name: "outside the zone", qname: "example.org.", qtype: dns.TypeA, notLocal: true},
		{name: "suffix that is not a subdomain", qname: "xcluster.local.", qtype: dns.TypeA, notLocal: true},
		{name: "non-IN class in the zone", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA, qclass: dns.ClassCHAOS,
			rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := dns.Question{Name: tt.qname, Qtype: tt.qtype, Qclass: cmpOr(tt.qclass, dns.ClassINET)}
			got := rec.Answer(q, cmpOr(tt.ttl, 5))
			if got.Local == tt.notLocal {
				t.Fatalf("Local = %v, want %v (result %+v)", got.Local, !tt.notLocal, got)
			}
			if tt.notLocal {
				return
			}
			if got.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[tt.rcode])
			}
			checkRRs(t, "answer", got.Answer, tt.answer)
			checkRRs(t, "authority", got.Ns, tt.ns)
			checkRRs(t, "additional", got.Extra, tt.extra)
		})
	}
}

func TestNewRecordsDefaultDomain(t *testing.T) {
	rec := NewRecords("", testServices(), nil)
	if rec.Domain() != "cluster.local." {
		t.Fatalf("Domain() = %q, want cluster.local.", rec.Domain())
	}
	got := rec.Answer(dns.Question{Name: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, 5)
	if len(got.Answer) != 1 {
		t.Fatalf("answer = %v, want the cluster IP", got.Answer)
	}
}

// TestAnswerDoesNotShareRecords checks that callers may modify what Answer
// returns (the server sets TTLs and truncates) without changing the snapshot.
func TestAnswerDoesNotShareRecords(t *testing.T) {
	rec := NewRecords("cluster.local", testServices(), nil)
	q := dns.Question{Name: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	first := rec.Answer(q, 5)
	first.Answer[0].(*dns.A).A[3] = 99
	second := rec.Answer(q, 5)
	checkRRs(t, "answer", second.Answer, []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"})
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func mustReverse(t *testing.T, ip string) string {
	t.Helper()
	name, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatalf("reverse %s: %v", ip, err)
	}
	return name
}

// checkRRs compares rrs with want in presentation format, ignoring
// whitespace and order.
func checkRRs(t *testing.T, section string, rrs []dns.RR, want []string) {
	t.Helper()
	got := make([]string, len(rrs))
	for i, rr := range rrs {
		got[i] = strings.Join(strings.Fields(rr.String()), " ")
	}
	want = slices.Clone(want)
	for i := range want {
		want[i] = strings.Join(strings.Fields(want[i]), " ")
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s section:\n got  %q\n want %q", section, got, want)
	}
}
