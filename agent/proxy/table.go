package proxy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/endpoints"
	"github.com/shoal-dev/shoal/object/manifest"
)

// Frontend is an address and protocol the proxy listens on.
type Frontend struct {
	Proto corev1.Protocol // TCP or UDP
	Addr  netip.AddrPort
}

func (f Frontend) String() string { return string(f.Proto) + "/" + f.Addr.String() }

// Backend is one endpoint of a service port.
type Backend struct {
	Addr  netip.AddrPort
	Pod   string
	Group string // the pod's value of the weights label, when weighted
	Route string // the pod's value of the routes label, when routed
}

// Port is one service port as the proxy serves it.
type Port struct {
	Service   string // namespace/name
	Name      string // the service port's name
	Proto     corev1.Protocol
	Frontends []netip.AddrPort
	Backends  []Backend // sorted by address
	Policy    string    // manifest.RoundRobin or manifest.LeastConnections
	Affinity  time.Duration
	Weights   *manifest.Weights
	// Routes, on a port marked appProtocol: http, makes the proxy speak
	// HTTP on it and pick the backend per request (A/B by header or
	// cookie); nil on every other port.
	Routes *manifest.Routes
}

// routed reports whether the port is served as HTTP.
func (p *Port) routed() bool { return p.Routes != nil }

// Key names the service port.
func (p *Port) Key() string { return fmt.Sprintf("%s:%s/%s", p.Service, p.Name, p.Proto) }

// defaultAffinity is Kubernetes' default ClientIP affinity timeout.
const defaultAffinity = 10800 * time.Second

// Build computes the proxy table: one Port per port of every service with a
// ClusterIP (headless and ExternalName services have nothing to proxy).
// nodeAddrs are the addresses node ports (and LoadBalancer services' ports)
// listen on; eps gives a service's
// endpoints. Services' annotations were validated on the way in; a value
// that does not parse here falls back to the default.
func Build(nodeAddrs []netip.Addr, svcs []*corev1.Service, eps func(*corev1.Service) []endpoints.Endpoint) []Port {
	var out []Port
	for _, s := range svcs {
		clusterIP, err := netip.ParseAddr(s.Spec.ClusterIP)
		if err != nil || s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		base := Port{Service: s.Namespace + "/" + s.Name, Policy: manifest.RoundRobin}
		if s.Annotations[manifest.AnnotationLoadBalancer] == manifest.LeastConnections {
			base.Policy = manifest.LeastConnections
		}
		if v, ok := s.Annotations[manifest.AnnotationWeights]; ok {
			if w, err := manifest.ParseWeights(v); err == nil {
				base.Weights = &w
			}
		}
		var routes *manifest.Routes
		if v, ok := s.Annotations[manifest.AnnotationRoutes]; ok {
			if r, err := manifest.ParseRoutes(v); err == nil {
				routes = &r
			}
		}
		if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			base.Affinity = defaultAffinity
			if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
				base.Affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
			}
		}
		var externals []netip.Addr
		for _, e := range s.Spec.ExternalIPs {
			if ip, err := netip.ParseAddr(e); err == nil {
				externals = append(externals, ip)
			}
		}
		list := eps(s)
		for i, sp := range s.Spec.Ports {
			p := base
			p.Name, p.Proto = sp.Name, sp.Protocol
			if p.Proto == "" {
				p.Proto = corev1.ProtocolTCP
			}
			if routes != nil && p.Proto == corev1.ProtocolTCP && sp.AppProtocol != nil && strings.EqualFold(*sp.AppProtocol, "http") {
				p.Routes = routes
			}
			p.Frontends = append(p.Frontends, netip.AddrPortFrom(clusterIP, uint16(sp.Port)))
			if sp.NodePort != 0 {
				for _, a := range nodeAddrs {
					p.Frontends = append(p.Frontends, netip.AddrPortFrom(a, uint16(sp.NodePort)))
				}
			}
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				// Every node is the load balancer: its addresses are the
				// service's ingress, on the service port.
				for _, a := range nodeAddrs {
					p.Frontends = append(p.Frontends, netip.AddrPortFrom(a, uint16(sp.Port)))
				}
			}
			for _, ip := range externals {
				p.Frontends = append(p.Frontends, netip.AddrPortFrom(ip, uint16(sp.Port)))
			}
			for _, e := range list {
				if (!e.Ready && !s.Spec.PublishNotReadyAddresses) || i >= len(e.Ports) || e.Ports[i].Target == 0 {
					continue
				}
				b := Backend{Addr: netip.AddrPortFrom(e.IP, uint16(e.Ports[i].Target)), Pod: e.PodName}
				if p.Weights != nil {
					b.Group = e.Labels[p.Weights.Label]
				}
				if p.Routes != nil {
					b.Route = e.Labels[p.Routes.Label]
				}
				p.Backends = append(p.Backends, b)
			}
			slices.SortFunc(p.Backends, func(a, b Backend) int {
				return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Pod, b.Pod))
			})
			out = append(out, p)
		}
	}
	return out
}
