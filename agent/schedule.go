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

	"github.com/shoal-dev/shoal/agent/events"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
	"github.com/shoal-dev/shoal/sched"
)

// allocationKind is the internal object whose revision guards binds to one
// node: every bind rewrites it, so two claimers that saw the same node state
// cannot both commit a bind to that node.
const allocationKind = "NodeAllocation"

// scheduleLoop places the pending pods that this agent claims. Claims go by
// rendezvous hashing of the pod uid over the agents gossip sees alive, so
// every pod has one claimer and a dead claimer's pods move to the next.
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

type bindGroup struct {
	node      string
	allocRev  uint64
	allocPods int64
	pods      []*pb.Object
}

func (a *Agent) scheduleOnce(ctx context.Context) {
	store := a.node.Store()
	var agents []string
	alive := map[string]bool{}
	for _, m := range a.mesh.Alive() {
		agents = append(agents, m.Name)
		alive[m.Name] = true
	}
	podObjs, _ := store.List("Pod", "", nil)
	var mine []*corev1.Pod
	podObj := map[string]*pb.Object{}
	for _, o := range podObjs {
		var peek struct {
			Spec struct {
				NodeName string `json:"nodeName"`
			} `json:"spec"`
		}
		if json.Unmarshal(o.GetSpec(), &peek) != nil || peek.Spec.NodeName != "" {
			continue
		}
		if sched.Claimer(o.GetUid(), agents) != a.cfg.Name {
			continue
		}
		var pod corev1.Pod
		if err := object.Decode(o, &pod); err != nil || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
			continue
		}
		mine = append(mine, &pod)
		podObj[string(pod.UID)] = o
	}
	if len(mine) == 0 {
		return
	}
	// Read the allocation revisions before the pods they guard: a bind
	// committed after this read fails our compare-and-swap.
	allocs := map[string]*pb.Object{}
	allocObjs, _ := store.List(allocationKind, "", nil)
	for _, o := range allocObjs {
		allocs[o.GetName()] = o
	}
	snap := a.snapshot(alive)
	slices.SortFunc(mine, func(x, y *corev1.Pod) int { return x.CreationTimestamp.Compare(y.CreationTimestamp.Time) })
	groups := map[string]*bindGroup{}
	var order []string
	for _, pod := range mine {
		d := sched.Place(snap, pod, a.cfg.SchedulerPolicy)
		if d.Node == "" {
			a.markUnschedulable(ctx, podObj[string(pod.UID)], pod, d.Message(len(snap.Nodes)))
			continue
		}
		d.Node = breakTie(d, string(pod.UID))
		g := groups[d.Node]
		if g == nil {
			g = &bindGroup{node: d.Node}
			if al := allocs[d.Node]; al != nil {
				g.allocRev = al.GetResourceVersion()
				var spec struct {
					Spec struct {
						Pods int64 `json:"pods"`
					} `json:"spec"`
				}
				_ = json.Unmarshal(al.GetSpec(), &spec)
				g.allocPods = spec.Spec.Pods
			}
			groups[d.Node] = g
			order = append(order, d.Node)
		}
		bound, err := bindSpec(podObj[string(pod.UID)], d.Node)
		if err != nil {
			a.log.Warn("bind", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			continue
		}
		g.pods = append(g.pods, bound)
		// Later placements in this round see this pod on its node.
		placed := pod.DeepCopy()
		placed.Spec.NodeName = d.Node
		for i := range snap.Nodes {
			if snap.Nodes[i].Node.Name == d.Node {
				snap.Nodes[i].Pods = append(snap.Nodes[i].Pods, placed)
			}
		}
	}
	for _, node := range order {
		a.commitBinds(ctx, groups[node])
	}
}

// snapshot builds the scheduler's view: every node with gossip liveness and
// the pods bound to it that still hold resources.
func (a *Agent) snapshot(alive map[string]bool) sched.Snapshot {
	store := a.node.Store()
	nodeObjs, _ := store.List("Node", "", nil)
	podObjs, _ := store.List("Pod", "", nil)
	byNode := map[string][]*corev1.Pod{}
	for _, o := range podObjs {
		var pod corev1.Pod
		if object.Decode(o, &pod) != nil || pod.Spec.NodeName == "" {
			continue
		}
		if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
			continue
		}
		byNode[pod.Spec.NodeName] = append(byNode[pod.Spec.NodeName], &pod)
	}
	var snap sched.Snapshot
	for _, o := range nodeObjs {
		var n corev1.Node
		if object.Decode(o, &n) != nil {
			continue
		}
		snap.Nodes = append(snap.Nodes, sched.NodeInfo{Node: &n, Alive: alive[n.Name], Pods: byNode[n.Name],
			// On the process runtime pods share the node's address, so every
			// containerPort is a host port.
			SharedHostNetwork: strings.HasPrefix(n.Status.NodeInfo.ContainerRuntimeVersion, "process://")})
	}
	return snap
}

// bindSpec returns the stored pod with spec.nodeName set.
func bindSpec(o *pb.Object, node string) (*pb.Object, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(o.GetSpec(), &top); err != nil {
		return nil, err
	}
	var spec map[string]any
	if err := json.Unmarshal(top["spec"], &spec); err != nil {
		return nil, err
	}
	spec["nodeName"] = node
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	top["spec"] = b
	all, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	out := &pb.Object{Kind: o.GetKind(), ApiVersion: o.GetApiVersion(), Namespace: o.GetNamespace(), Name: o.GetName(),
		Uid: o.GetUid(), ResourceVersion: o.GetResourceVersion(), Labels: o.GetLabels(), Annotations: o.GetAnnotations(),
		OwnerReferences: o.GetOwnerReferences(), Spec: all}
	return out, nil
}

// commitBinds binds a group of pods to one node in one transaction, guarded
// by the node's allocation revision and each pod's revision. A conflict is
// left for the next round, which sees fresh state.
func (a *Agent) commitBinds(ctx context.Context, g *bindGroup) {
	alloc := &pb.Object{Kind: allocationKind, ApiVersion: "shoal.dev/v1", Name: g.node,
		Spec: fmt.Appendf(nil, `{"spec":{"pods":%d}}`, g.allocPods+int64(len(g.pods)))}
	ops := []*pb.Op{{Type: pb.Op_PUT, Object: alloc, ExpectRevision: g.allocRev, MustCreate: g.allocRev == 0}}
	for _, p := range g.pods {
		ops = append(ops, &pb.Op{Type: pb.Op_PUT, Object: p, ExpectRevision: p.GetResourceVersion()})
		p.ResourceVersion = 0
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := a.api.Txn(cctx, &pb.TxnRequest{Ops: ops}); err != nil {
		a.log.Debug("bind conflict, will retry", "node", g.node, "pods", len(g.pods), "err", err)
		return
	}
	a.log.Debug("bound pods", "node", g.node, "pods", len(g.pods))
	for _, p := range g.pods {
		a.events.Event(events.Ref{Kind: "Pod", Namespace: p.GetNamespace(), Name: p.GetName(), UID: p.GetUid()},
			corev1.EventTypeNormal, "Scheduled", fmt.Sprintf("Successfully assigned %s/%s to %s", p.GetNamespace(), p.GetName(), g.node))
	}
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

// breakTie picks among the nodes that share the best score by rendezvous
// hashing of the pod uid, rather than by name: claimers placing different
// pods at once then spread over equally good nodes instead of all racing
// for the same one's allocation revision.
func breakTie(d sched.Decision, podUID string) string {
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
	return sched.Claimer(podUID, tied)
}
