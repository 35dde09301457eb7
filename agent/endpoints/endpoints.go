// Package endpoints computes a Service's endpoints from the pods it
// selects: the pure function every agent runs on its own replica, so that
// DNS and the proxy need no Endpoints objects and no write traffic.
package endpoints

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Port is one service port resolved on one endpoint.
type Port struct {
	Name     string // the service port's name
	Protocol corev1.Protocol
	Port     int32 // the service port
	Target   int32 // the port on the pod; 0 when a named target port is not on this pod
}

// Endpoint is one pod behind a service.
type Endpoint struct {
	IP       netip.Addr
	PodName  string
	NodeName string
	Hostname string // spec.hostname when spec.subdomain names the service
	Ready    bool
	Ports    []Port
	Labels   map[string]string // the pod's, shared: do not modify
}

// For returns the endpoints of svc among pods: the pods in svc's namespace
// that its selector matches, that are bound, running or pending (not
// finished) and have an IP, sorted by pod name. Ready says whether the pod's
// Ready condition is true. A service without a selector (or of type
// ExternalName) has none.
func For(svc *corev1.Service, pods []*corev1.Pod) []Endpoint {
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var out []Endpoint
	for _, p := range pods {
		if p.Namespace != svc.Namespace || p.Spec.NodeName == "" || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
			continue
		}
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil {
			continue
		}
		e := Endpoint{IP: ip, PodName: p.Name, NodeName: p.Spec.NodeName, Ready: ready(p), Labels: p.Labels}
		if p.Spec.Subdomain == svc.Name {
			e.Hostname = p.Spec.Hostname
		}
		for _, sp := range svc.Spec.Ports {
			proto := sp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			e.Ports = append(e.Ports, Port{Name: sp.Name, Protocol: proto, Port: sp.Port, Target: target(sp, p)})
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.PodName, b.PodName) })
	return out
}

func ready(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// target resolves a service port's targetPort on pod p: a number, the
// container port of that name and protocol, or the service port when unset.
func target(sp corev1.ServicePort, p *corev1.Pod) int32 {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				cproto := cp.Protocol
				if cproto == "" {
					cproto = corev1.ProtocolTCP
				}
				if cp.Name == tp.StrVal && cproto == proto {
					return cp.ContainerPort
				}
			}
		}
		return 0
	case tp.IntVal != 0:
		return tp.IntVal
	}
	return sp.Port
}
