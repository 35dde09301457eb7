// Package servicelb is the bare-metal load balancer of LoadBalancer
// services, like k3s' ServiceLB: every node is the load balancer. The
// service's ports are served on every node's address by the node's proxy,
// and its status lists those addresses as the ingress, which is what
// `get services` shows as EXTERNAL-IP.
package servicelb

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/controller"
)

// Reconcile returns the status write that makes svc's load balancer
// ingress the addresses of the Ready nodes (sorted), or clears it when svc
// is not a LoadBalancer service; nothing when it already is so.
func Reconcile(svc *corev1.Service, nodes []*corev1.Node) []controller.Write {
	var want []corev1.LoadBalancerIngress
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		var ips []netip.Addr
		for _, n := range nodes {
			if !nodeReady(n) {
				continue
			}
			for _, a := range n.Status.Addresses {
				if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
					continue
				}
				if ip, err := netip.ParseAddr(a.Address); err == nil && !slices.Contains(ips, ip) {
					ips = append(ips, ip)
				}
			}
		}
		slices.SortFunc(ips, netip.Addr.Compare)
		for _, ip := range ips {
			want = append(want, corev1.LoadBalancerIngress{IP: ip.String()})
		}
	}
	have := svc.Status.LoadBalancer.Ingress
	if slices.EqualFunc(have, want, func(a, b corev1.LoadBalancerIngress) bool { return a.IP == b.IP && a.Hostname == b.Hostname }) {
		return nil
	}
	out := svc.DeepCopy()
	out.Status.LoadBalancer.Ingress = want
	return []controller.Write{{Action: controller.UpdateStatus, Kind: controller.KindService, Object: out, Reason: "EnsuredLoadBalancer"}}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
