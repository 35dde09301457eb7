package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// fakeUpstream is a resolver on 127.0.0.1 standing in for the host's: it
// answers example.org with 192.0.2.1 and everything else NXDOMAIN.
func fakeUpstream(t *testing.T) (addr string, queries *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	queries = &atomic.Int64{}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		queries.Add(1)
		m := new(mdns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; strings.EqualFold(q.Name, "example.org.") && q.Qtype == mdns.TypeA {
			rr, _ := mdns.NewRR("example.org. 60 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String(), queries
}

// dig runs the real dig against an agent's DNS and returns its answer
// lines (+short) or, with status, the header's status.
func dig(t *testing.T, server string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", append([]string{"@" + server, "+time=2", "+tries=1"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func shortLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// TestClusterDNS covers services acceptance 2 (and the DNS half of 1) with
// Debian's dig against every agent: headless services answer with each
// Ready pod's IP and SRV records, ExternalName with a CNAME, a ClusterIP
// service with its address, unknown names in the domain with NXDOMAIN, and
// other names are forwarded to the upstream resolver.
func TestClusterDNS(t *testing.T) {
	skipShort(t)
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatal("dig is needed (Debian package dnsutils; .ci/run installs it)")
	}
	upstream, queries := fakeUpstream(t)
	c := harness.New(t, 3, harness.Options{ExtraArgs: []string{"--dns-upstream", upstream}})
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 0)
	a := c.Agents[0]
	manifest := `apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: shoal-testapp
        command: ["shoal-testapp", "sleep"]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  type: ExternalName
  externalName: db.example.org
`
	c.MustCLI(a, "apply", "-f", writeManifest(t, "dns.yaml", manifest))
	var nodeIPs []string
	for _, b := range c.Agents {
		nodeIPs = append(nodeIPs, b.IP)
	}
	slices.Sort(nodeIPs)

	for _, b := range c.Agents {
		t.Run("answers on "+b.Name, func(t *testing.T) {
			// On the process runtime a pod's IP is its node's: three
			// replicas spread over three agents give the three node IPs.
			waitfor.Cond(t, 30*time.Second, "headless A records for the 3 Ready pods", func() (bool, string) {
				out, err := dig(t, b.IP, "+short", "db.default.svc.cluster.local", "A")
				return err == nil && slices.Equal(shortLines(out), nodeIPs), out
			})
			out, err := dig(t, b.IP, "+short", "_pg._tcp.db.default.svc.cluster.local", "SRV")
			if err != nil || len(shortLines(out)) != 3 || !strings.Contains(out, " 5432 ") {
				t.Fatalf("SRV of the headless service: %v\n%s", err, out)
			}
			if out, err = dig(t, b.IP, "+short", "web.default.svc.cluster.local"); err != nil || out != "10.96.0.10" {
				t.Fatalf("ClusterIP service: %v %q", err, out)
			}
			if out, err = dig(t, b.IP, "+short", "ext.default.svc.cluster.local", "CNAME"); err != nil || out != "db.example.org." {
				t.Fatalf("ExternalName service: %v %q", err, out)
			}
			if out, err = dig(t, b.IP, "nope.default.svc.cluster.local"); err != nil || !strings.Contains(out, "status: NXDOMAIN") ||
				!strings.Contains(out, "SOA") {
				t.Fatalf("unknown name in the cluster domain: %v\n%s", err, out)
			}
			if out, err = dig(t, b.IP, "+tcp", "+short", "db.default.svc.cluster.local"); err != nil || len(shortLines(out)) != 3 {
				t.Fatalf("over TCP: %v %q", err, out)
			}
		})
	}
	t.Run("other names are forwarded, then cached", func(t *testing.T) {
		before := queries.Load()
		for range 2 {
			out, err := dig(t, a.IP, "+short", "example.org")
			if err != nil || out != "192.0.2.1" {
				t.Fatalf("forwarded name: %v %q", err, out)
			}
		}
		if n := queries.Load() - before; n != 1 {
			t.Fatalf("upstream saw %d queries for two lookups, want 1 (the second from the cache)", n)
		}
		out, err := dig(t, a.IP, "missing.example.org")
		if err != nil || !strings.Contains(out, "status: NXDOMAIN") {
			t.Fatalf("upstream NXDOMAIN: %v\n%s", err, out)
		}
	})
	t.Run("a deleted service leaves the answers within a second", func(t *testing.T) {
		c.MustCLI(a, "delete", "service", "ext")
		waitfor.Cond(t, 5*time.Second, "ext gone from DNS", func() (bool, string) {
			out, err := dig(t, c.Agents[1].IP, "ext.default.svc.cluster.local")
			return err == nil && strings.Contains(out, "status: NXDOMAIN"), fmt.Sprint(out)
		})
	})
}
