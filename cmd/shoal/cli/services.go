package cli

//lint:file-ignore SA1019 get endpoints prints core/v1 Endpoints, the shape kubectl users read; Kubernetes still serves it beside EndpointSlice.

import (
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shoal-dev/shoal/agent/endpoints"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func init() {
	tables["Service"] = columns{
		headers: []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"},
		row: func(o *pb.Object, now time.Time) []string {
			var s corev1.Service
			_ = object.Decode(o, &s)
			return append(serviceRow(&s, false), object.Age(o.GetCreateTimeUnixNano(), now))
		},
		wide: []string{"SELECTOR"},
		wideRow: func(o *pb.Object) []string {
			var s corev1.Service
			_ = object.Decode(o, &s)
			return []string{labels.FormatLabels(s.Spec.Selector)}
		},
	}
}

// serviceRow is kubectl's service table row up to AGE: NAME, TYPE,
// CLUSTER-IP, EXTERNAL-IP, PORT(S). wide keeps long load-balancer ingress
// lists whole, as kubectl's -o wide does.
func serviceRow(s *corev1.Service, wide bool) []string {
	return []string{s.Name, serviceType(s), serviceClusterIP(s), serviceExternalIP(s, wide), servicePorts(s.Spec.Ports)}
}

func serviceType(s *corev1.Service) string {
	if s.Spec.Type == "" {
		return string(corev1.ServiceTypeClusterIP)
	}
	return string(s.Spec.Type)
}

func serviceClusterIP(s *corev1.Service) string {
	switch {
	case len(s.Spec.ClusterIPs) > 0:
		return s.Spec.ClusterIPs[0]
	case s.Spec.ClusterIP != "":
		return s.Spec.ClusterIP
	}
	return "<none>"
}

// serviceExternalIP is kubectl's EXTERNAL-IP column: the external IPs of a
// ClusterIP or NodePort service, the load balancer's ingress (then
// <pending>) and the external IPs of a LoadBalancer, the name an
// ExternalName service points to.
func serviceExternalIP(s *corev1.Service, wide bool) string {
	switch s.Spec.Type {
	case "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(s.Spec.ExternalIPs) > 0 {
			return strings.Join(s.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		ingress := lbIngress(s)
		lb := strings.Join(ingress, ",")
		if !wide && len(lb) > 16 {
			lb = lb[:13] + "..."
		}
		if len(s.Spec.ExternalIPs) > 0 {
			return strings.Join(append(ingress, s.Spec.ExternalIPs...), ",")
		}
		if lb != "" {
			return lb
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	}
	return "<unknown>"
}

// lbIngress is the IP (else hostname) of each load balancer ingress.
func lbIngress(s *corev1.Service) []string {
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		switch {
		case in.IP != "":
			out = append(out, in.IP)
		case in.Hostname != "":
			out = append(out, in.Hostname)
		}
	}
	return out
}

// servicePorts is kubectl's PORT(S) column: "80/TCP", or "80:30080/TCP"
// when the port has a node port.
func servicePorts(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "<none>"
	}
	parts := make([]string, len(ports))
	for i, p := range ports {
		s := strconv.Itoa(int(p.Port))
		if p.NodePort > 0 {
			s += ":" + strconv.Itoa(int(p.NodePort))
		}
		parts[i] = s + "/" + string(protocolOf(p.Protocol))
	}
	return strings.Join(parts, ",")
}

func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// endpointsOf shapes the endpoints of svc among pods (computed by
// endpoints.For, as every agent does) as the core/v1 Endpoints object
// Kubernetes' endpoints controller would write, so that -o json and -o yaml
// show users what kubectl shows: pods with the same resolved ports share a
// subset; Ready pods (all of them with publishNotReadyAddresses) are
// addresses, the others notReadyAddresses; a pod that lacks a named target
// port is left out of that port, and out of the object when it resolves
// none. Shoal stores no Endpoints, so the object has the service's labels
// and creation time and no uid or revision.
func endpointsOf(svc *corev1.Service, pods []*corev1.Pod) *corev1.Endpoints {
	out := &corev1.Endpoints{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Endpoints"},
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace,
			Labels: maps.Clone(svc.Labels), CreationTimestamp: svc.CreationTimestamp},
	}
	uids := map[string]types.UID{}
	for _, p := range pods {
		if p.Namespace == svc.Namespace {
			uids[p.Name] = p.UID
		}
	}
	type subset struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	byPorts := map[string]*subset{}
	for _, e := range endpoints.For(svc, pods) {
		var ports []corev1.EndpointPort
		for _, p := range e.Ports {
			if p.Target == 0 {
				continue
			}
			ports = append(ports, corev1.EndpointPort{Name: p.Name, Port: p.Target, Protocol: p.Protocol})
		}
		if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
			continue
		}
		slices.SortFunc(ports, func(a, b corev1.EndpointPort) int {
			if c := strings.Compare(a.Name, b.Name); c != 0 {
				return c
			}
			if a.Port != b.Port {
				return int(a.Port - b.Port)
			}
			return strings.Compare(string(a.Protocol), string(b.Protocol))
		})
		key := fmt.Sprint(ports)
		ss := byPorts[key]
		if ss == nil {
			ss = &subset{ports: ports}
			byPorts[key] = ss
		}
		node := e.NodeName
		addr := corev1.EndpointAddress{IP: e.IP.String(), Hostname: e.Hostname, NodeName: &node,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: svc.Namespace, Name: e.PodName, UID: uids[e.PodName]}}
		if e.Ready || svc.Spec.PublishNotReadyAddresses {
			ss.ready = append(ss.ready, addr)
		} else {
			ss.notReady = append(ss.notReady, addr)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(byPorts)) {
		ss := byPorts[key]
		sortAddresses(ss.ready)
		sortAddresses(ss.notReady)
		out.Subsets = append(out.Subsets, corev1.EndpointSubset{Addresses: ss.ready, NotReadyAddresses: ss.notReady, Ports: ss.ports})
	}
	return out
}

// sortAddresses orders addresses by IP, then pod name, as Kubernetes does.
func sortAddresses(as []corev1.EndpointAddress) {
	slices.SortFunc(as, func(a, b corev1.EndpointAddress) int {
		ia, _ := netip.ParseAddr(a.IP)
		ib, _ := netip.ParseAddr(b.IP)
		if c := ia.Compare(ib); c != 0 {
			return c
		}
		return strings.Compare(a.TargetRef.Name, b.TargetRef.Name)
	})
}

// formatEndpoints is kubectl's ENDPOINTS column: ip:port for every address
// and port (ports limited to portName when not nil; headless services
// without ports list bare IPs), the first three then "+ N more...", or
// <none>. notReady lists the notReadyAddresses instead.
func formatEndpoints(ep *corev1.Endpoints, portName *string, notReady bool) string {
	const show = 3
	var list []string
	count := 0
	add := func(s string) {
		count++
		if len(list) < show {
			list = append(list, s)
		}
	}
	for _, ss := range ep.Subsets {
		addrs := ss.Addresses
		if notReady {
			addrs = ss.NotReadyAddresses
		}
		if len(ss.Ports) == 0 {
			for _, a := range addrs {
				add(a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			if portName != nil && p.Name != *portName {
				continue
			}
			for _, a := range addrs {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	if len(list) == 0 {
		return "<none>"
	}
	s := strings.Join(list, ",")
	if count > show {
		s += fmt.Sprintf(" + %d more...", count-show)
	}
	return s
}

// printEndpointsTable writes the table of get endpoints: NAME, ENDPOINTS
// (ready addresses), AGE, and with wide NOT-READY.
func printEndpointsTable(w io.Writer, eps []*corev1.Endpoints, wide, allNamespaces bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	h := []string{"NAME", "ENDPOINTS", "AGE"}
	if allNamespaces {
		h = append([]string{"NAMESPACE"}, h...)
	}
	if wide {
		h = append(h, "NOT-READY")
	}
	fmt.Fprintln(tw, strings.Join(h, "\t"))
	for _, ep := range eps {
		var created int64
		if !ep.CreationTimestamp.IsZero() {
			created = ep.CreationTimestamp.UnixNano()
		}
		row := []string{ep.Name, formatEndpoints(ep, nil, false), object.Age(created, now)}
		if allNamespaces {
			row = append([]string{ep.Namespace}, row...)
		}
		if wide {
			row = append(row, formatEndpoints(ep, nil, true))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// describeService prints the Service part of describe, as kubectl
// describe service: addresses, each port with its target, node port and
// ready endpoints, session affinity.
func describeService(w io.Writer, s *corev1.Service, ep *corev1.Endpoints) {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	defer tw.Flush()
	fmt.Fprintf(tw, "Selector:\t%s\n", labels.FormatLabels(s.Spec.Selector))
	fmt.Fprintf(tw, "Type:\t%s\n", serviceType(s))
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	}
	if len(ips) > 0 {
		fmt.Fprintf(tw, "IP:\t%s\n", ips[0])
		fmt.Fprintf(tw, "IPs:\t%s\n", strings.Join(ips, ","))
	}
	if len(s.Spec.ExternalIPs) > 0 {
		fmt.Fprintf(tw, "External IPs:\t%s\n", strings.Join(s.Spec.ExternalIPs, ","))
	}
	if s.Spec.ExternalName != "" {
		fmt.Fprintf(tw, "External Name:\t%s\n", s.Spec.ExternalName)
	}
	if in := lbIngress(s); len(in) > 0 {
		fmt.Fprintf(tw, "LoadBalancer Ingress:\t%s\n", strings.Join(in, ", "))
	}
	for _, p := range s.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		proto := protocolOf(p.Protocol)
		fmt.Fprintf(tw, "Port:\t%s  %d/%s\n", name, p.Port, proto)
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		fmt.Fprintf(tw, "TargetPort:\t%s/%s\n", target.String(), proto)
		if p.NodePort != 0 {
			fmt.Fprintf(tw, "NodePort:\t%s  %d/%s\n", name, p.NodePort, proto)
		}
		if s.Spec.Type != corev1.ServiceTypeExternalName {
			fmt.Fprintf(tw, "Endpoints:\t%s\n", formatEndpoints(ep, &p.Name, false))
		}
	}
	if len(s.Spec.Ports) == 0 && s.Spec.Type != corev1.ServiceTypeExternalName {
		fmt.Fprintf(tw, "Endpoints:\t%s\n", formatEndpoints(ep, nil, false))
	}
	affinity := string(s.Spec.SessionAffinity)
	if affinity == "" {
		affinity = string(corev1.ServiceAffinityNone)
	}
	fmt.Fprintf(tw, "Session Affinity:\t%s\n", affinity)
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		fmt.Fprintf(tw, "Session Affinity Timeout:\t%ds\n", *c.ClientIP.TimeoutSeconds)
	}
}
