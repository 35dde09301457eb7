package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/agent/binding"
	"github.com/shoal-dev/shoal/agent/events"
	"github.com/shoal-dev/shoal/agent/informer"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
	"github.com/shoal-dev/shoal/sched"
)

// guardName names the one PlacementGuard: binds whose pods have rules
// about other pods across a topology domain rewrite it (see needsGuard).
const guardName = "inter-pod"

// scheduleLoop places the pending pods that this agent claims. Claims go by
// rendezvous hashing of the pod's claim key (its controller's uid, else its
// own) over the agents gossip sees alive, so every pod has one claimer and a
// dead claimer's pods move to the next.
func (a *Agent) scheduleLoop(ctx context.Context) {
	store := a.node.Store()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := store.Changed()
		a.scheduleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// claimKey is what a pod's claimer is hashed from: its controlling owner's
// uid when it has one, so that one agent places all the replicas of a
// ReplicaSet and spreads them as a single scheduler would, else its own.
func claimKey(o *pb.Object) string {
	for _, r := range o.GetOwnerReferences() {
		if r.GetController() && r.GetUid() != "" {
			return r.GetUid()
		}
	}
	return o.GetUid()
}

// claimCache remembers which unbound pods this agent claims under the
// current membership: rendezvous hashing over a hundred agents is not free
// and the scheduler runs on every change.
type claimCache struct {
	members string          // sorted alive agent names, comma-joined
	byUID   map[string]bool // pod uid -> claimed by this agent
}

// maxBindsPerTxn bounds one bind transaction: the state machine re-checks
// every bind in it, and a refusal of one sends all back to the next round.
const maxBindsPerTxn = 100

// bindGroup is binds of one round that go in one transaction: those that
// need the guard, or up to maxBindsPerTxn of the others.
type bindGroup struct {
	guard    bool
	guardRev uint64 // guarded group: the guard's revision before the snapshot
	guardSeq int64
	pods     []*pb.Object
	nodes    []string
}

func (a *Agent) scheduleOnce(ctx context.Context) {
	var agents []string
	alive := map[string]bool{}
	for _, m := range a.mesh.Alive() {
		agents = append(agents, m.Name)
		alive[m.Name] = true
	}
	slices.Sort(agents)
	if key := strings.Join(agents, ","); key != a.claims.members {
		a.claims.members, a.claims.byUID = key, map[string]bool{}
	}
	var claimed []*pb.Object
	unbound := a.pods.Unbound()
	seen := make(map[string]bool, len(unbound))
	for _, o := range unbound {
		uid := o.GetUid()
		seen[uid] = true
		ours, ok := a.claims.byUID[uid]
		if !ok {
			ours = sched.Claimer(claimKey(o), agents) == a.cfg.Name
			a.claims.byUID[uid] = ours
		}
		if ours && !binding.Finished(o.GetStatus()) {
			claimed = append(claimed, o)
		}
	}
	for uid := range a.claims.byUID {
		if !seen[uid] {
			delete(a.claims.byUID, uid)
		}
	}
	mine := a.pods.Decode(claimed)
	if len(mine) == 0 {
		return
	}
	// Read the guard before the pods it protects: a guarded bind committed
	// after this read fails our compare-and-swap.
	guarded := &bindGroup{guard: true}
	if g, _ := a.node.Store().Get(object.PlacementGuardKind, "", guardName); g != nil {
		var spec struct {
			Spec object.PlacementGuardSpec `json:"spec"`
		}
		_ = json.Unmarshal(g.GetSpec(), &spec)
		guarded.guardRev, guarded.guardSeq = g.GetResourceVersion(), spec.Spec.Revision
	}
	snap := a.snapshot(alive)
	anti := requiredAntiAffinity(snap, mine)
	slices.SortFunc(mine, func(x, y informer.Pod) int {
		return x.Pod.CreationTimestamp.Compare(y.Pod.CreationTimestamp.Time)
	})
	var plain []*bindGroup
	for _, p := range mine {
		d := sched.Place(snap, p.Pod, a.cfg.SchedulerPolicy)
		if d.Node == "" {
			a.markUnschedulable(ctx, p.Obj, p.Pod, d.Message(len(snap.Nodes)))
			continue
		}
		d.Node = breakTie(d, a.cfg.Name)
		g := guarded
		if !needsGuard(p.Pod, anti) {
			if len(plain) == 0 || len(plain[len(plain)-1].pods) == maxBindsPerTxn {
				plain = append(plain, &bindGroup{})
			}
			g = plain[len(plain)-1]
		}
		g.pods = append(g.pods, p.Obj)
		g.nodes = append(g.nodes, d.Node)
		// Later placements in this round see this pod on its node.
		placed := p.Pod.DeepCopy()
		placed.Spec.NodeName = d.Node
		for i := range snap.Nodes {
			if snap.Nodes[i].Node.Name == d.Node {
				snap.Nodes[i].Pods = append(snap.Nodes[i].Pods, placed)
			}
		}
	}
	var last uint64
	for _, g := range plain {
		last = max(last, a.commitBinds(ctx, g))
	}
	if len(guarded.pods) > 0 {
		last = max(last, a.commitBinds(ctx, guarded))
	}
	// The next round must see these binds, or it would place the same pods
	// again and have the whole transaction refused as already bound.
	if last > 0 {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = a.node.Store().WaitRevision(wctx, last)
		cancel()
	}
}

// needsGuard reports whether a bind of pod depends on other pods in ways
// the state machine's fit check does not see: its own required pod
// affinity or anti-affinity or hard topology spread, or another pod's
// required anti-affinity that selects it.
func needsGuard(pod *corev1.Pod, anti []labels.Selector) bool {
	if aff := pod.Spec.Affinity; aff != nil {
		if aff.PodAffinity != nil && len(aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			return true
		}
		if aff.PodAntiAffinity != nil && len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			return true
		}
	}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			return true
		}
	}
	set := labels.Set(pod.Labels)
	for _, sel := range anti {
		if sel.Matches(set) {
			return true
		}
	}
	return false
}

// requiredAntiAffinity collects the label selectors of the required
// anti-affinity terms of every pod bound or being placed.
func requiredAntiAffinity(snap sched.Snapshot, pending []informer.Pod) []labels.Selector {
	var out []labels.Selector
	add := func(pod *corev1.Pod) {
		aff := pod.Spec.Affinity
		if aff == nil || aff.PodAntiAffinity == nil {
			return
		}
		for _, t := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector); err == nil {
				out = append(out, sel)
			}
		}
	}
	for _, n := range snap.Nodes {
		for _, p := range n.Pods {
			add(p)
		}
	}
	for _, p := range pending {
		add(p.Pod)
	}
	return out
}

// snapshot builds the scheduler's view: every node with gossip liveness and
// the pods bound to it that still hold resources.
func (a *Agent) snapshot(alive map[string]bool) sched.Snapshot {
	bound := a.pods.Bound()
	var snap sched.Snapshot
	for _, n := range a.pods.Nodes() {
		snap.Nodes = append(snap.Nodes, sched.NodeInfo{Node: n.Node, Alive: alive[n.Node.Name], Pods: bound[n.Node.Name],
			SharedHostNetwork: binding.SharedHostNetwork(n.Node)})
	}
	return snap
}

// commitBinds commits one group of binds in one transaction. The state
// machine re-checks each bind's fit against the pods bound by then; the
// guarded group also compare-and-swaps the guard. A refusal is left for
// the next round, which sees fresh state: refusals are rare, since the
// state machine refuses only a bind that would overcommit its node.
func (a *Agent) commitBinds(ctx context.Context, g *bindGroup) (revision uint64) {
	var ops []*pb.Op
	if g.guard {
		guard := &pb.Object{Kind: object.PlacementGuardKind, ApiVersion: object.PlacementGuardAPIVersion, Name: guardName,
			Spec: fmt.Appendf(nil, `{"spec":{"revision":%d}}`, g.guardSeq+1)}
		ops = append(ops, &pb.Op{Type: pb.Op_PUT, Object: guard, ExpectRevision: g.guardRev, MustCreate: g.guardRev == 0})
	}
	for i, p := range g.pods {
		ops = append(ops, &pb.Op{Type: pb.Op_BIND, Node: g.nodes[i],
			Object: &pb.Object{Kind: "Pod", Namespace: p.GetNamespace(), Name: p.GetName(), Uid: p.GetUid()}})
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := a.api.Txn(cctx, &pb.TxnRequest{Ops: ops})
	if err != nil {
		a.log.Debug("bind refused, will retry", "guarded", g.guard, "pods", len(g.pods), "err", err)
		return 0
	}
	a.log.Debug("bound pods", "guarded", g.guard, "pods", len(g.pods))
	for i, p := range g.pods {
		a.events.Event(events.Ref{Kind: "Pod", Namespace: p.GetNamespace(), Name: p.GetName(), UID: p.GetUid()},
			corev1.EventTypeNormal, "Scheduled", fmt.Sprintf("Successfully assigned %s/%s to %s", p.GetNamespace(), p.GetName(), g.nodes[i]))
	}
	return resp.GetRevision()
}

// markUnschedulable records why a pod cannot be placed (PodScheduled=False),
// writing only when the reason changed.
func (a *Agent) markUnschedulable(ctx context.Context, o *pb.Object, pod *corev1.Pod, msg string) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == msg {
			return
		}
	}
	st := corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: msg, LastTransitionTime: metav1.NewTime(time.Now()),
	}}}
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = a.api.Txn(cctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_STATUS, ExpectRevision: o.GetResourceVersion(),
		Object: &pb.Object{Kind: "Pod", Namespace: o.GetNamespace(), Name: o.GetName(), Status: b}}}})
	if err == nil {
		a.log.Info("pod unschedulable", "pod", o.GetNamespace()+"/"+o.GetName(), "why", msg)
		a.events.Event(events.Ref{Kind: "Pod", Namespace: o.GetNamespace(), Name: o.GetName(), UID: o.GetUid()},
			corev1.EventTypeWarning, "FailedScheduling", msg)
	}
}

// breakTie picks among the nodes that share the best score the first one
// at or after this agent's own name on the ring of sorted node names.
// Claimers placing at once from the same view would all pick the same node
// if ties went by name, and would pile up at random if they went by pod;
// starting each from its own place on the ring, claimer i's pods fill nodes
// i, i+1, ... and the load comes out even.
func breakTie(d sched.Decision, self string) string {
	best, ok := d.Score[d.Node]
	if !ok {
		return d.Node
	}
	var tied []string
	for n, sc := range d.Score {
		if sc == best {
			tied = append(tied, n)
		}
	}
	if len(tied) < 2 {
		return d.Node
	}
	slices.Sort(tied)
	i, _ := slices.BinarySearch(tied, self)
	return tied[i%len(tied)]
}
