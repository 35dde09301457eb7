package dns

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Port is one named service port. Only named ports get SRV records.
type Port struct {
	Name     string
	Protocol string // "TCP", "UDP" or "SCTP"
	Port     int32
}

// Endpoint is one backend of a service. Only headless services publish
// their endpoints in DNS.
type Endpoint struct {
	IP netip.Addr
	// Hostname is the pod's hostname when it set a subdomain matching a
	// headless service; it names the endpoint instead of its dashed IP.
	Hostname string
	PodName  string
	Ready    bool
	// Ports are the endpoint's target ports, used in headless SRV records.
	Ports []Port
}

// Service is what DNS needs of one Service.
type Service struct {
	Name, Namespace string
	ClusterIPs      []netip.Addr // empty for headless and ExternalName
	Headless        bool         // clusterIP: None
	ExternalName    string       // type ExternalName: answered with a CNAME
	Ports           []Port
	Endpoints       []Endpoint
	// PublishNotReady publishes endpoints that are not ready, as
	// StatefulSets need for peer discovery before they are ready.
	PublishNotReady bool
}

// Pod is a pod with an IP, for pod A records and PTR records.
type Pod struct {
	Name, Namespace string
	IP              netip.Addr
}

// Records is an immutable, indexed snapshot of the cluster zone, built by
// NewRecords and read concurrently by any number of queries. Answers are
// computed per question by Answer.
type Records struct {
	domain string // lowercase and fully qualified, "cluster.local."
	// names holds every name that exists in the zone, including empty
	// non-terminals (such as "ns.svc.<domain>"), which answer NODATA
	// rather than NXDOMAIN.
	names map[string]*node
	// ptrs maps an IP to the names its reverse lookup returns.
	ptrs map[netip.Addr][]string
}

// node is the data at one name. Records are built from it per question so
// that the TTL and the owner's spelling come from the query.
type node struct {
	addrs []netip.Addr // A and AAAA, split by family when answering
	srvs  []srv
	cname string // ExternalName target; excludes all other data
	txt   []string
}

type srv struct {
	port   uint16
	target string
}

// DefaultDomain is the cluster domain when none is configured.
const DefaultDomain = "cluster.local"

// schemaVersion is the Kubernetes DNS specification version this package
// implements, published at dns-version.<domain> as the spec requires.
const schemaVersion = "1.1.0"

// NewRecords builds the snapshot for domain ("" means DefaultDomain) from
// services and pods. Objects whose names are not DNS labels, and zero IPs,
// are skipped: one bad object must not take the zone down.
func NewRecords(domain string, services []Service, pods []Pod) *Records {
	b := &builder{
		r: &Records{
			domain: normalizeDomain(domain),
			names:  make(map[string]*node),
			ptrs:   make(map[netip.Addr][]string),
		},
		ptrTier: make(map[netip.Addr]int),
	}
	z := b.r.domain
	b.node(z)
	b.node("svc." + z)
	b.node("pod." + z)
	b.node("dns-version." + z).txt = []string{schemaVersion}
	for i := range services {
		b.addService(&services[i])
	}
	for _, p := range pods {
		b.addPod(p)
	}
	b.finish()
	return b.r
}

// Domain is the zone the snapshot answers for, fully qualified and lowercase.
func (r *Records) Domain() string { return r.domain }

func normalizeDomain(domain string) string {
	if domain == "" {
		domain = DefaultDomain
	}
	return dns.Fqdn(lowerASCII(strings.Trim(domain, ".")))
}

// builder accumulates a Records. PTR targets come in tiers so that the most
// specific name wins for an IP: a ClusterIP or endpoint hostname (0) over a
// pod name (1) over a headless endpoint's dashed name (2).
type builder struct {
	r       *Records
	ptrTier map[netip.Addr]int
}

const (
	tierService = iota
	tierPod
	tierDashed
)

func (b *builder) node(name string) *node {
	n, ok := b.r.names[name]
	if !ok {
		n = &node{}
		b.r.names[name] = n
	}
	return n
}

func (b *builder) addPTR(ip netip.Addr, target string, tier int) {
	cur, seen := b.ptrTier[ip]
	switch {
	case !seen || tier < cur:
		b.ptrTier[ip] = tier
		b.r.ptrs[ip] = []string{target}
	case tier == cur:
		b.r.ptrs[ip] = append(b.r.ptrs[ip], target)
	}
}

func (b *builder) addService(s *Service) {
	name, ns := lowerASCII(s.Name), lowerASCII(s.Namespace)
	if !isLabel(name) || !isLabel(ns) {
		return
	}
	base := name + "." + ns + ".svc." + b.r.domain
	if s.ExternalName != "" {
		target := dns.Fqdn(lowerASCII(s.ExternalName))
		if _, ok := dns.IsDomainName(target); ok && target != "." {
			b.node(base).cname = target
		}
		return
	}
	if !s.Headless {
		n := b.node(base)
		for _, ip := range s.ClusterIPs {
			if ip = ip.Unmap(); ip.IsValid() {
				n.addrs = append(n.addrs, ip)
				b.addPTR(ip, base, tierService)
			}
		}
		for _, p := range s.Ports {
			if owner, ok := srvName(p, base); ok && validPort(p.Port) {
				b.node(owner).srvs = append(b.node(owner).srvs, srv{uint16(p.Port), base})
			}
		}
		return
	}
	b.addHeadless(s, base)
}

// addHeadless publishes each ready endpoint (every endpoint when
// PublishNotReady) under the service name, its own name, and SRV records.
func (b *builder) addHeadless(s *Service, base string) {
	n := b.node(base)
	for _, ep := range s.Endpoints {
		ip := ep.IP.Unmap()
		if !ip.IsValid() || !(ep.Ready || s.PublishNotReady) {
			continue
		}
		n.addrs = append(n.addrs, ip)
		dashed := dashedIP(ip) + "." + base
		b.node(dashed).addrs = append(b.node(dashed).addrs, ip)
		target := dashed
		if host := lowerASCII(ep.Hostname); isLabel(host) {
			target = host + "." + base
			b.node(target).addrs = append(b.node(target).addrs, ip)
			b.addPTR(ip, target, tierService)
		} else {
			b.addPTR(ip, dashed, tierDashed)
		}
		for _, p := range headlessPorts(s, ep) {
			if owner, ok := srvName(p, base); ok {
				b.node(owner).srvs = append(b.node(owner).srvs, srv{uint16(p.Port), target})
			}
		}
	}
	// A named service port is a name even while no endpoint serves it.
	for _, p := range s.Ports {
		if owner, ok := srvName(p, base); ok {
			b.node(owner)
		}
	}
}

// headlessPorts is the named ports an endpoint serves: its own target ports,
// and the service's named ports it does not list, at the service's number.
func headlessPorts(s *Service, ep Endpoint) []Port {
	var out []Port
	for _, p := range ep.Ports {
		if p.Name != "" && validPort(p.Port) {
			out = append(out, p)
		}
	}
	for _, p := range s.Ports {
		if p.Name == "" || !validPort(p.Port) {
			continue
		}
		listed := slices.ContainsFunc(out, func(q Port) bool {
			return strings.EqualFold(q.Name, p.Name) && protocol(q) == protocol(p)
		})
		if !listed {
			out = append(out, p)
		}
	}
	return out
}

func (b *builder) addPod(p Pod) {
	ns := lowerASCII(p.Namespace)
	ip := p.IP.Unmap()
	if !isLabel(ns) || !ip.IsValid() {
		return
	}
	name := dashedIP(ip) + "." + ns + ".pod." + b.r.domain
	b.node(name).addrs = append(b.node(name).addrs, ip)
	b.addPTR(ip, name, tierPod)
}

// srvName is the SRV owner name "_port._proto.<base>" of a named port.
func srvName(p Port, base string) (string, bool) {
	name, proto := lowerASCII(p.Name), protocol(p)
	if !isLabel(name) || !isLabel(proto) {
		return "", false
	}
	return "_" + name + "._" + proto + "." + base, true
}

// protocol is the port's protocol as an SRV label part, "tcp" when unset as
// in Kubernetes.
func protocol(p Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return lowerASCII(p.Protocol)
}

func validPort(p int32) bool { return p > 0 && p <= 65535 }

// finish adds the empty non-terminals between every name and the zone apex,
// and sorts and de-duplicates each node's data so answers are deterministic.
func (b *builder) finish() {
	z := b.r.domain
	for name := range b.r.names {
		for p := name; p != z && len(p) > len(z); {
			_, rest, _ := strings.Cut(p, ".")
			p = rest
			if _, ok := b.r.names[p]; !ok {
				b.r.names[p] = &node{}
			}
		}
	}
	for _, n := range b.r.names {
		slices.SortFunc(n.addrs, netip.Addr.Compare)
		n.addrs = slices.Compact(n.addrs)
		slices.SortFunc(n.srvs, func(a, b srv) int {
			return cmp.Or(strings.Compare(a.target, b.target), cmp.Compare(a.port, b.port))
		})
		n.srvs = slices.Compact(n.srvs)
	}
	for ip, targets := range b.r.ptrs {
		slices.Sort(targets)
		b.r.ptrs[ip] = slices.Compact(targets)
	}
}
