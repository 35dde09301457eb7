package agent

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/hpa"
	"github.com/shoal-dev/shoal/agent/events"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Defaults of the autoscaling timings, as Kubernetes': the HPA controller
// syncs every 15 s and the kubelet samples usage every 10 s.
const (
	defaultHPASyncPeriod = 15 * time.Second
	defaultStatsInterval = 10 * time.Second
)

// hpaEntry is what the leader remembers of one HPA between syncs.
type hpaEntry struct {
	mem        hpa.Memory
	lastSync   time.Time
	generation int64
}

// hpaLoop runs the HorizontalPodAutoscaler controller while this agent
// leads: every HPA is synced each HPASyncPeriod, and a new or edited one at
// once. A sync gathers the usage of every pod from all agents (the API's
// Top, fanned out as for `shoal top`) and hands it to the pure controller
// with the HPA, its target and the target's pods. It runs apart from the
// other controllers so that an agent slow to answer Top delays no other
// reconcile.
//
// The recommendations and scale events the stabilization windows and the
// policies look back on live here, in memory: they are dropped when this
// agent stops leading, so a new leader starts the windows afresh.
func (a *Agent) hpaLoop(ctx context.Context) {
	period := a.hpaSyncPeriod()
	store := a.node.Store()
	state := map[string]*hpaEntry{} // by HPA uid
	tick := time.NewTicker(min(period, time.Second))
	defer tick.Stop()
	for {
		changed := store.Changed()
		if a.node.IsLeader() {
			a.syncHPAs(ctx, state, period)
		} else {
			clear(state)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
			select { // let a burst of changes land
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		case <-tick.C:
		}
	}
}

func (a *Agent) hpaSyncPeriod() time.Duration {
	if a.cfg.HPASyncPeriod > 0 {
		return a.cfg.HPASyncPeriod
	}
	return defaultHPASyncPeriod
}

func (a *Agent) statsInterval() time.Duration {
	if a.cfg.StatsInterval > 0 {
		return a.cfg.StatsInterval
	}
	return defaultStatsInterval
}

// syncHPAs syncs the HPAs that are due: never synced by this leader, edited
// since, or last synced a period ago.
func (a *Agent) syncHPAs(ctx context.Context, state map[string]*hpaEntry, period time.Duration) {
	objs, _ := a.node.Store().List(hpa.Kind, "", nil)
	now := time.Now()
	seen := make(map[string]bool, len(objs))
	var due []*pb.Object
	for _, o := range objs {
		seen[o.GetUid()] = true
		e := state[o.GetUid()]
		if e == nil || e.generation != o.GetGeneration() || now.Sub(e.lastSync) >= period {
			due = append(due, o)
		}
	}
	for uid := range state {
		if !seen[uid] {
			delete(state, uid)
		}
	}
	if len(due) == 0 {
		return
	}
	usage := a.podUsage(ctx)
	for _, o := range due {
		e := state[o.GetUid()]
		if e == nil {
			e = &hpaEntry{}
			state[o.GetUid()] = e
		}
		e.lastSync, e.generation = now, o.GetGeneration()
		a.syncHPA(ctx, o.GetNamespace(), o.GetName(), e, usage)
	}
}

// podUsage asks every agent for its pods' latest usage.
func (a *Agent) podUsage(ctx context.Context) hpa.Usage {
	u := hpa.Usage{Window: a.statsInterval(), Pods: map[hpa.PodKey]hpa.PodUsage{}}
	resp, err := a.api.Top(ctx, &pb.TopRequest{})
	u.At = time.Now() // no sample is newer
	if err != nil {
		a.log.Warn("autoscaler: read pod usage", "err", err)
		return u
	}
	for _, n := range resp.GetNodes() {
		if n.GetError() != "" {
			a.log.Debug("autoscaler: no usage from node", "from", n.GetNode(), "reason", n.GetError())
		}
	}
	for _, p := range resp.GetPods() {
		var pu hpa.PodUsage
		for _, c := range p.GetContainers() {
			pu.CPUMillis += c.GetCpuMillis()
			pu.MemoryBytes += c.GetMemoryBytes()
		}
		u.Pods[hpa.PodKey{Namespace: p.GetNamespace(), Name: p.GetName(), Node: p.GetNode()}] = pu
	}
	return u
}

// hpaAttempts bounds how often one sync recomputes after its writes lost a
// compare-and-swap (the target's status changing under it, say).
const hpaAttempts = 3

// syncHPA reconciles one HPA from fresh reads and commits its writes, the
// target's scale and the HPA's status, in one transaction; its events and
// memory are kept only once that commits.
func (a *Agent) syncHPA(ctx context.Context, ns, name string, e *hpaEntry, usage hpa.Usage) {
	store := a.node.Store()
	for attempt := 1; ; attempt++ {
		o, _ := store.Get(hpa.Kind, ns, name)
		if o == nil {
			return // deleted meanwhile
		}
		h := &autoscalingv2.HorizontalPodAutoscaler{}
		if a.decode(o, h) != nil {
			return
		}
		target, terr := a.hpaTarget(h)
		var pods []*corev1.Pod
		for _, ip := range a.pods.Pods() {
			if ip.Pod.Namespace == ns {
				pods = append(pods, ip.Pod)
			}
		}
		env := controller.Env{Now: time.Now(), NewName: newName}
		res := hpa.Reconcile(hpa.DefaultConfig(), env, hpa.Input{HPA: h, Target: target, TargetErr: terr, Pods: pods, Usage: usage, Memory: e.mem})
		err := a.commitHPA(ctx, res.Writes)
		if err == nil {
			e.mem = res.Memory
			ref := events.Ref{Kind: hpa.Kind, Namespace: ns, Name: name, UID: string(h.UID)}
			for _, ev := range res.Events {
				a.events.Event(ref, ev.Type, ev.Reason, ev.Message)
				if ev.Reason == hpa.ReasonRescale {
					a.log.Info("autoscaled", "hpa", ns+"/"+name, "target", h.Spec.ScaleTargetRef.Kind+"/"+h.Spec.ScaleTargetRef.Name,
						"replicas", res.Desired, "event", ev.Message)
				}
			}
			return
		}
		if status.Code(err) != codes.Aborted || attempt == hpaAttempts {
			a.log.Debug("autoscaler writes refused, will retry at the next sync", "hpa", ns+"/"+name, "err", err)
			return
		}
	}
}

// hpaTarget reads h's target from the replica.
func (a *Agent) hpaTarget(h *autoscalingv2.HorizontalPodAutoscaler) (*hpa.Target, error) {
	ref := h.Spec.ScaleTargetRef
	var deployments []*appsv1.Deployment
	var sets []*appsv1.ReplicaSet
	if o, _ := a.node.Store().Get(ref.Kind, h.Namespace, ref.Name); o != nil {
		switch ref.Kind {
		case controller.KindDeployment:
			d := &appsv1.Deployment{}
			if a.decode(o, d) == nil {
				deployments = append(deployments, d)
			}
		case controller.KindReplicaSet:
			rs := &appsv1.ReplicaSet{}
			if a.decode(o, rs) == nil {
				sets = append(sets, rs)
			}
		}
	}
	return hpa.FindTarget(h, deployments, sets)
}

// commitHPA applies one sync's writes as one transaction.
func (a *Agent) commitHPA(ctx context.Context, writes []controller.Write) error {
	if len(writes) == 0 {
		return nil
	}
	req := &pb.TxnRequest{}
	for _, w := range writes {
		op, err := writeOp(w)
		if err != nil {
			return err
		}
		req.Ops = append(req.Ops, op)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := a.api.Txn(cctx, req)
	return err
}
