package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/deployment"
	"github.com/shoal-dev/shoal/agent/controller/nodelifecycle"
	"github.com/shoal-dev/shoal/agent/controller/replicaset"
	"github.com/shoal-dev/shoal/agent/controller/servicelb"
	"github.com/shoal-dev/shoal/gossip"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// controllerLoop runs the reconcile loops while this agent leads: on every
// change of the replica and at least every second. Each reconcile's writes
// commit as one transaction guarded by the revisions they were computed
// from, so a stale decision is refused and made again on fresh state.
// The HorizontalPodAutoscaler runs in a loop of its own (hpaLoop), as each
// of its syncs first waits for every agent's usage.
func (a *Agent) controllerLoop(ctx context.Context) {
	store := a.node.Store()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		changed := store.Changed()
		if a.node.IsLeader() {
			a.reconcileAll(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
			// Let a burst of changes land before the next pass.
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		case <-tick.C:
		}
	}
}

// view is one decoded read of the replica for the controllers.
type view struct {
	pods        []*corev1.Pod
	podsByNS    map[string][]*corev1.Pod
	podsByNode  map[string][]*corev1.Pod
	sets        []*appsv1.ReplicaSet
	setsByNS    map[string][]*appsv1.ReplicaSet
	deployments []*appsv1.Deployment
	nodes       []*corev1.Node
	lbServices  []*corev1.Service // LoadBalancer services, and those with an ingress to clear
}

func (a *Agent) readView() view {
	store := a.node.Store()
	v := view{podsByNS: map[string][]*corev1.Pod{}, podsByNode: map[string][]*corev1.Pod{}, setsByNS: map[string][]*appsv1.ReplicaSet{}}
	for _, ip := range a.pods.Pods() {
		p := ip.Pod
		v.pods = append(v.pods, p)
		v.podsByNS[p.Namespace] = append(v.podsByNS[p.Namespace], p)
		if p.Spec.NodeName != "" {
			v.podsByNode[p.Spec.NodeName] = append(v.podsByNode[p.Spec.NodeName], p)
		}
	}
	objs, _ := store.List("ReplicaSet", "", nil)
	for _, o := range objs {
		rs := &appsv1.ReplicaSet{}
		if a.decode(o, rs) == nil {
			v.sets = append(v.sets, rs)
			v.setsByNS[rs.Namespace] = append(v.setsByNS[rs.Namespace], rs)
		}
	}
	objs, _ = store.List("Deployment", "", nil)
	for _, o := range objs {
		d := &appsv1.Deployment{}
		if a.decode(o, d) == nil {
			v.deployments = append(v.deployments, d)
		}
	}
	for _, n := range a.pods.Nodes() {
		v.nodes = append(v.nodes, n.Node)
	}
	objs, _ = store.List("Service", "", nil)
	for _, o := range objs {
		if !bytes.Contains(o.GetSpec(), []byte(`"LoadBalancer"`)) && !bytes.Contains(o.GetStatus(), []byte(`"ingress"`)) {
			continue // most services: no need to decode
		}
		s := &corev1.Service{}
		if a.decode(o, s) == nil {
			v.lbServices = append(v.lbServices, s)
		}
	}
	return v
}

func (a *Agent) decode(o *pb.Object, into any) error {
	if err := object.Decode(o, into); err != nil {
		a.log.Warn("decode stored object", "object", o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName(), "err", err)
		return err
	}
	return nil
}

func (a *Agent) reconcileAll(ctx context.Context) {
	if time.Since(a.lastGC) >= time.Second {
		a.lastGC = time.Now()
		a.collectGarbage(ctx)
	}
	env := controller.Env{Now: time.Now(), NewName: newName}
	v := a.readView()
	for _, d := range v.deployments {
		a.applyWrites(ctx, "deployment", deployment.Reconcile(env, d, v.setsByNS[d.Namespace], v.podsByNS[d.Namespace]))
	}
	for _, rs := range v.sets {
		a.applyWrites(ctx, "replicaset", replicaset.Reconcile(env, rs, v.podsByNS[rs.Namespace]))
	}
	members := map[string]gossip.Member{}
	for _, m := range a.mesh.Members() {
		members[m.Name] = m
	}
	for _, n := range v.nodes {
		m, known := members[n.Name]
		alive := known && m.IsAlive()
		deadSince := a.started
		if known && !alive {
			deadSince = m.Since
		}
		a.applyWrites(ctx, "nodelifecycle", nodelifecycle.Reconcile(env, n, alive, deadSince, a.cfg.PodEvictionTimeout, v.podsByNode[n.Name]))
	}
	for _, s := range v.lbServices {
		a.applyWrites(ctx, "servicelb", servicelb.Reconcile(s, v.nodes))
	}
}

// applyWrites commits one reconcile's writes as one transaction.
func (a *Agent) applyWrites(ctx context.Context, who string, writes []controller.Write) {
	if len(writes) == 0 {
		return
	}
	req := &pb.TxnRequest{}
	for _, w := range writes {
		op, err := writeOp(w)
		if err != nil {
			a.log.Warn("controller write", "controller", who, "write", w.String(), "err", err)
			return
		}
		req.Ops = append(req.Ops, op)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := a.api.Txn(cctx, req); err != nil {
		switch status.Code(err) {
		case codes.Aborted, codes.NotFound, codes.AlreadyExists, codes.Unavailable, codes.DeadlineExceeded:
			// Raced another writer or lost the lead: recompute on fresh state.
			a.log.Debug("controller writes refused, will recompute", "controller", who, "writes", len(writes), "err", err)
		default:
			a.log.Warn("controller writes refused", "controller", who, "writes", len(writes), "err", err)
		}
		return
	}
	for _, w := range writes {
		a.log.Debug("controller", "controller", who, "write", w.String())
	}
	a.recordWrites(writes)
}

func writeOp(w controller.Write) (*pb.Op, error) {
	o, err := object.FromTyped(w.Kind, w.Object)
	if err != nil {
		return nil, err
	}
	if k, ok := object.KindFor(w.Kind); ok {
		o.ApiVersion = k.APIVersion
	}
	rv, _ := strconv.ParseUint(w.Object.GetResourceVersion(), 10, 64)
	o.ResourceVersion = 0
	switch w.Action {
	case controller.Create:
		return &pb.Op{Type: pb.Op_PUT, Object: o, MustCreate: true}, nil
	case controller.Update:
		return &pb.Op{Type: pb.Op_PUT, Object: o, ExpectRevision: rv}, nil
	case controller.UpdateStatus:
		return &pb.Op{Type: pb.Op_STATUS, Object: o, ExpectRevision: rv}, nil
	case controller.Delete:
		return &pb.Op{Type: pb.Op_DELETE, Object: &pb.Object{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}, ExpectRevision: rv}, nil
	}
	return nil, fmt.Errorf("unknown action %v", w.Action)
}

// newName returns prefix plus five random characters of [a-z0-9], as
// Kubernetes names generated pods.
func newName(prefix string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}
