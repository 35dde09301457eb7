package agent

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/agent/endpoints"
	"github.com/shoal-dev/shoal/dns"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// DefaultDNSPort is the cluster DNS port on the bound IP.
const DefaultDNSPort = 53

// dnsRefresh bounds how often the DNS snapshot is rebuilt: changes show in
// answers within this, far under the one second services promise.
const dnsRefresh = 200 * time.Millisecond

// startDNS starts the cluster DNS server on BindAddr:DNSPort. A failure to
// listen (another resolver holding the port) is logged and leaves the agent
// running without cluster DNS: the rest of the node does not depend on it.
func (a *Agent) startDNS() {
	cfg := a.cfg
	if cfg.DNSPort < 0 {
		return
	}
	upstreams := cfg.DNSUpstreams
	listen := net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.DNSPort))
	if len(upstreams) == 0 {
		var err error
		if upstreams, err = dns.UpstreamsFromResolvConf("/etc/resolv.conf", listen); err != nil {
			a.log.Warn("dns: no upstream resolvers from /etc/resolv.conf; names outside the cluster get SERVFAIL", "err", err)
		}
	}
	dcfg := dns.DefaultConfig()
	dcfg.Addr, dcfg.Domain, dcfg.Upstreams, dcfg.Logger = listen, cfg.ClusterDomain, upstreams, a.log
	srv, err := dns.NewServer(dcfg)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		a.log.Error("cluster DNS not served", "addr", listen, "err", err)
		return
	}
	a.dns = srv
	a.log.Info("cluster DNS listening", "addr", srv.Addr(), "domain", cfg.ClusterDomain, "upstreams", upstreams)
}

// dnsLoop keeps the DNS snapshot in step with the local replica.
func (a *Agent) dnsLoop(ctx context.Context) {
	if a.dns == nil {
		return
	}
	store := a.node.Store()
	var built uint64
	for {
		changed := store.Changed()
		if rev := store.Revision(); rev != built {
			a.dns.SetRecords(a.dnsRecords())
			built = rev
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		// Let a burst of changes land before rebuilding.
		select {
		case <-ctx.Done():
			return
		case <-time.After(dnsRefresh):
		}
	}
}

// dnsRecords builds the DNS snapshot: every service with its endpoints
// computed from the pods it selects, and those pods for reverse lookups.
// Only pods that some service selects are decoded.
func (a *Agent) dnsRecords() *dns.Records {
	svcObjs, _ := a.node.Store().List("Service", "", nil)
	var services []*corev1.Service
	var selectors []labels.Selector
	var namespaces []string
	for _, o := range svcObjs {
		s := &corev1.Service{}
		if err := object.Decode(o, s); err != nil {
			continue
		}
		services = append(services, s)
		if len(s.Spec.Selector) > 0 {
			selectors = append(selectors, labels.SelectorFromSet(s.Spec.Selector))
			namespaces = append(namespaces, s.Namespace)
		}
	}
	var selected []*pb.Object
	for _, o := range a.pods.Objects() {
		for i, sel := range selectors {
			if o.GetNamespace() == namespaces[i] && sel.Matches(labels.Set(o.GetLabels())) {
				selected = append(selected, o)
				break
			}
		}
	}
	var pods []*corev1.Pod
	var dpods []dns.Pod
	for _, p := range a.pods.Decode(selected) {
		pods = append(pods, p.Pod)
		if ip, err := netip.ParseAddr(p.Pod.Status.PodIP); err == nil {
			dpods = append(dpods, dns.Pod{Name: p.Pod.Name, Namespace: p.Pod.Namespace, IP: ip})
		}
	}
	var out []dns.Service
	for _, s := range services {
		ds := dns.Service{Name: s.Name, Namespace: s.Namespace, PublishNotReady: s.Spec.PublishNotReadyAddresses}
		switch {
		case s.Spec.Type == corev1.ServiceTypeExternalName:
			ds.ExternalName = s.Spec.ExternalName
		case s.Spec.ClusterIP == corev1.ClusterIPNone:
			ds.Headless = true
		default:
			if ip, err := netip.ParseAddr(s.Spec.ClusterIP); err == nil {
				ds.ClusterIPs = []netip.Addr{ip}
			}
		}
		for _, sp := range s.Spec.Ports {
			proto := sp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ds.Ports = append(ds.Ports, dns.Port{Name: sp.Name, Protocol: string(proto), Port: sp.Port})
		}
		for _, e := range endpoints.For(s, pods) {
			de := dns.Endpoint{IP: e.IP, Hostname: e.Hostname, PodName: e.PodName, Ready: e.Ready}
			for _, p := range e.Ports {
				if p.Target != 0 {
					de.Ports = append(de.Ports, dns.Port{Name: p.Name, Protocol: string(p.Protocol), Port: p.Target})
				}
			}
			ds.Endpoints = append(ds.Endpoints, de)
		}
		out = append(out, ds)
	}
	return dns.NewRecords(a.cfg.ClusterDomain, out, dpods)
}
