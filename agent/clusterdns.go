package agent

import (
	"net"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/dns"
)

// DefaultDNSPort is the cluster DNS port on the bound IP.
const DefaultDNSPort = 53

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

// dnsRecords builds the DNS snapshot from the service view: every service
// with its endpoints, and the selected pods for reverse lookups.
func (a *Agent) dnsRecords(v *serviceView) *dns.Records {
	var dpods []dns.Pod
	for _, p := range v.pods {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			dpods = append(dpods, dns.Pod{Name: p.Name, Namespace: p.Namespace, IP: ip})
		}
	}
	var out []dns.Service
	for _, s := range v.services {
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
		for _, e := range v.endpoints(s) {
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
