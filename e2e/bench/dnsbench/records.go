package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// The records both servers answer: n ClusterIP services svc-0..svc-(n-1)
// in namespace default, each with an explicit ClusterIP, so that the zone
// file CoreDNS serves holds exactly the addresses Shoal allocated.

// serviceName is the name of service i.
func serviceName(i int) string { return fmt.Sprintf("svc-%d", i) }

// fqdn is the A name of service i in the cluster domain.
func fqdn(i int) string { return serviceName(i) + ".default.svc.cluster.local." }

// serviceIP is the ClusterIP of service i: 10.96.10.10 onwards, 200 to a
// /24, inside the agent's default service CIDR 10.96.0.0/12 and clear of
// the low addresses a cluster gives its own services.
func serviceIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 96, byte(10 + i/200), byte(10 + i%200)})
}

// servicesYAML is one multi-document manifest of the n services, for one
// shoal apply.
func servicesYAML(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n"+
			"spec:\n  clusterIP: %s\n  ports: [{name: http, port: 80}]\n", serviceName(i), serviceIP(i))
	}
	return b.String()
}

// zoneFile is the cluster.local zone CoreDNS's file plugin serves: an SOA,
// an NS, and the same n A records with the TTL Shoal gives (5 s).
func zoneFile(n int, nsAddr netip.Addr) string {
	var b strings.Builder
	b.WriteString("$ORIGIN cluster.local.\n$TTL 5\n")
	b.WriteString("@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5\n")
	b.WriteString("@ IN NS ns.dns.cluster.local.\n")
	fmt.Fprintf(&b, "ns.dns IN A %s\n", nsAddr)
	for i := range n {
		fmt.Fprintf(&b, "%s.default.svc IN A %s\n", serviceName(i), serviceIP(i))
	}
	return b.String()
}

// corefile serves zone file zonePath for cluster.local on addr:port with
// the errors plugin only, and with cache when cache is set.
func corefile(addr netip.Addr, port int, zonePath string, cache bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster.local:%d {\n    bind %s\n    file %s\n    errors\n", port, addr, zonePath)
	if cache {
		b.WriteString("    cache\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// queryFile is dnsperf's input: the n names, type A, in an order shuffled
// with a fixed seed, so every run and every server sees the same sequence.
func queryFile(n int) string {
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	var b strings.Builder
	for _, i := range order {
		fmt.Fprintf(&b, "%s A\n", fqdn(i))
	}
	return b.String()
}
