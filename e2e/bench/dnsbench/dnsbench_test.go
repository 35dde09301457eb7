package main

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/object/manifest"
)

// A throughput report and the -v lines of dnsperf 2.10 (Debian 12).
const dnsperfOut = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.152.3 -p 10053 -d q.txt -l 1 -Q 20 -v
[Status] Sending queries (to 127.0.152.3:10053)
> NOERROR svc-0.default.svc.cluster.local A 0.000546
> NOERROR svc-1.default.svc.cluster.local A 0.000810
> T svc-2.default.svc.cluster.local A
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         1061463
  Queries completed:    1061460 (100.00%)
  Queries lost:         3 (0.00%)

  Response codes:       NOERROR 1061459 (100.00%), NXDOMAIN 1 (0.00%)
  Average packet size:  request 49, response 65
  Run time (s):         10.000109
  Queries per second:   106144.140954

  Average Latency (s):  0.000882 (min 0.000020, max 0.006573)
  Latency StdDev (s):   0.000312

`

func TestParseDnsperf(t *testing.T) {
	r, err := parseDnsperf([]byte(dnsperfOut))
	if err != nil {
		t.Fatal(err)
	}
	want := perfResult{Sent: 1061463, Completed: 1061460, Lost: 3, NoError: 1061459, QPS: 106144.140954,
		Avg: 882 * time.Microsecond, StdDev: 312 * time.Microsecond, Min: 20 * time.Microsecond, Max: 6573 * time.Microsecond,
		ReqSize: 49, RespSize: 65, Latencies: []time.Duration{546 * time.Microsecond, 810 * time.Microsecond}}
	r.Rcodes = ""
	round := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	r.Avg, r.StdDev, r.Min, r.Max = round(r.Avg), round(r.StdDev), round(r.Min), round(r.Max)
	for i := range r.Latencies {
		r.Latencies[i] = round(r.Latencies[i])
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}
	if _, err := parseDnsperf([]byte("Error: socket: address in use\n")); err == nil {
		t.Fatal("a report without statistics parsed")
	}
}

func TestRecords(t *testing.T) {
	const n = 1000
	seen := map[netip.Addr]bool{}
	cidr := netip.MustParsePrefix("10.96.0.0/12")
	for i := range n {
		ip := serviceIP(i)
		if seen[ip] || !cidr.Contains(ip) || ip.As4()[3] == 0 || ip.As4()[3] == 255 {
			t.Fatalf("service %d: address %s repeated or out of place", i, ip)
		}
		seen[ip] = true
	}
	objs, err := manifest.DecodeReader("services.yaml", strings.NewReader(servicesYAML(n)))
	if err != nil {
		t.Fatalf("the services manifest does not decode: %v", err)
	}
	if len(objs) != n || objs[n-1].GetName() != "svc-999" {
		t.Fatalf("decoded %d objects", len(objs))
	}
	zone := zoneFile(n, netip.MustParseAddr("127.0.152.3"))
	if !strings.Contains(zone, "\nsvc-999.default.svc IN A 10.96.14.209\n") || strings.Count(zone, " IN A ") != n+1 {
		t.Fatalf("zone file:\n%.300s", zone)
	}
	q := strings.Split(strings.TrimSpace(queryFile(n)), "\n")
	sorted := slices.Clone(q)
	slices.Sort(sorted)
	if len(q) != n || slices.Equal(q, sorted) || len(slices.Compact(sorted)) != n || q[0] != strings.Split(queryFile(n), "\n")[0] {
		t.Fatalf("query file is not the %d names shuffled the same way each time", n)
	}
	if !strings.HasSuffix(q[0], ".default.svc.cluster.local. A") {
		t.Fatalf("query line %q", q[0])
	}
	cf := corefile(netip.MustParseAddr("127.0.152.3"), 10053, "/z", false)
	if cf != "cluster.local:10053 {\n    bind 127.0.152.3\n    file /z\n    errors\n}\n" {
		t.Fatalf("Corefile:\n%s", cf)
	}
	if !strings.Contains(corefile(netip.MustParseAddr("127.0.152.4"), 10053, "/z", true), "    cache\n") {
		t.Fatal("no cache plugin in the cached Corefile")
	}
}
