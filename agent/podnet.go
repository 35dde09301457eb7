package agent

import (
	"context"
	"net/netip"
	"time"

	"github.com/shoal-dev/shoal/agent/podcidr"
	"github.com/shoal-dev/shoal/agent/podroutes"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// podRanger is a runtime driver that gives pods addresses from the node's
// pod CIDR (containerd).
type podRanger interface {
	SetPodCIDR(cidr string) error
	PodCIDR() string
}

// podCIDRLoop waits until this agent's Node has a pod CIDR (given with
// --pod-cidr or allocated by the leader when the node registered), then
// hands it to the runtime driver and gossips it, so other agents route to
// it.
func (a *Agent) podCIDRLoop(ctx context.Context) {
	warned := ""
	noMasq := false
	a.every(ctx, time.Second, false, func(context.Context) bool {
		o, _ := a.node.Store().Get("Node", "", a.cfg.Name)
		cidr := podcidr.Of(o)
		if cidr == "" {
			return false
		}
		if a.cfg.PodCIDR != "" && cidr != a.cfg.PodCIDR && warned != cidr {
			warned = cidr
			a.log.Warn("the cluster holds another pod CIDR for this node than --pod-cidr; using the cluster's (a pod CIDR never changes)",
				"flag", a.cfg.PodCIDR, "node", cidr)
		}
		if r, ok := a.driver.(podRanger); ok {
			if err := r.SetPodCIDR(cidr); err != nil {
				if warned != "driver "+cidr {
					warned = "driver " + cidr
					a.log.Error("runtime cannot take the node's pod CIDR", "cidr", cidr, "err", err)
				}
				return false
			}
			if p, err := netip.ParsePrefix(r.PodCIDR()); err == nil && !noMasq {
				added, err := podroutes.NoMasquerade(p, a.cfg.ClusterCIDR)
				if err != nil {
					a.log.Warn("pods will reach other nodes' pods from the node's address", "err", err)
				} else if added {
					a.log.Info("pod to pod traffic leaves without NAT", "from", p, "to", a.cfg.ClusterCIDR)
				}
				noMasq = err == nil
			}
		}
		a.metaMu.Lock()
		gossiped := a.meta.GetPodCidr()
		a.metaMu.Unlock()
		if gossiped != cidr {
			a.setMeta(func(m *pb.NodeMeta) { m.PodCidr = cidr })
			a.log.Info("pod CIDR", "cidr", cidr)
		}
		return false
	})
}

// podRoutesLoop keeps a route to every other live node's pod CIDR via
// that node's address, and removes it when the node is gone. It runs with
// runtimes that give pods addresses of their own (containerd).
func (a *Agent) podRoutesLoop(ctx context.Context) {
	r, ok := a.driver.(podRanger)
	if !ok {
		return
	}
	tab := podroutes.New()
	lastErr := ""
	a.every(ctx, 5*time.Second, true, func(context.Context) bool {
		self := podroutes.Peer{Name: a.cfg.Name, Addr: a.cfg.BindAddr, PodCIDR: r.PodCIDR()}
		var peers []podroutes.Peer
		for _, m := range a.mesh.Alive() {
			peers = append(peers, podroutes.Peer{Name: m.Name, Addr: m.Addr, PodCIDR: m.Meta.GetPodCidr()})
		}
		added, deleted, err := tab.Sync(podroutes.Plan(self, peers))
		for _, rt := range added {
			a.log.Info("pod route added", "dst", rt.Dst, "via", rt.Via, "node", rt.Node)
		}
		for _, rt := range deleted {
			a.log.Info("pod route removed", "dst", rt.Dst, "via", rt.Via)
		}
		if err != nil && err.Error() != lastErr {
			a.log.Warn("pod routes", "err", err)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		return false
	})
}
