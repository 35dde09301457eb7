package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/agent/binding"
	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// placeResult is one placement run.
type placeResult struct {
	pods, placed int
	elapsed      time.Duration
	rate         float64       // placed pods per second
	p50, p99     time.Duration // per pod, from commit to bound
	// Log entries the leader applied while placing, by what they did.
	entries, bindTxns, otherWrites, refused int
	approximate                             bool // the event ring overran
	minPerNode, maxPerNode                  int
	overCapacity                            []string
}

func podPrefix(rep int) string { return fmt.Sprintf("place-r%d-", rep) }

// benchPod is one pod of the placement run, as a user's manifest gives it.
func benchPod(name string) (*pb.Object, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "shoal-testapp", Command: []string{"shoal-testapp", "sleep"},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewMilliQuantity(podCPUMillis, resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(podMemoryBytes, resource.BinarySI),
			}},
		}}},
	}
	return object.FromTyped("Pod", pod)
}

// placement creates cfg.pods pods in one transaction through a follower's
// API and watches the leader's replica until every one is bound.
func (b *bench) placement(ctx context.Context, rep int) (placeResult, error) {
	l, err := b.c.waitLeader(ctx)
	if err != nil {
		return placeResult{}, err
	}
	var via string
	for _, cfg := range b.c.cfgs {
		if cfg.Name != b.c.name(l) {
			via = net.JoinHostPort(cfg.BindAddr, fmt.Sprint(cfg.GRPCPort))
			break
		}
	}
	conn, err := client.Dial(via)
	if err != nil {
		return placeResult{}, err
	}
	defer conn.Close()
	req := &pb.TxnRequest{}
	prefix := podPrefix(rep)
	for i := range b.cfg.pods {
		o, err := benchPod(fmt.Sprintf("%s%04d", prefix, i))
		if err != nil {
			return placeResult{}, err
		}
		req.Ops = append(req.Ops, &pb.Op{Type: pb.Op_PUT, Object: o, MustCreate: true})
	}

	store := l.Node().Store()
	w := &podWatch{store: store, prefix: prefix, want: b.cfg.pods, rev: store.Revision(),
		bound: map[string]time.Time{}, revKinds: map[uint64]revKind{}}
	created := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := conn.Txn(cctx, req)
		created <- err
	}()
	deadline := time.NewTimer(b.cfg.placeLimit)
	defer deadline.Stop()
	progress := time.NewTicker(progressEvery)
	defer progress.Stop()
	sent := time.Now()
	timedOut := false
	for !timedOut {
		changed := store.Changed()
		w.poll(time.Now())
		if w.done() {
			break
		}
		select {
		case <-changed:
		case err := <-created:
			if err != nil {
				return placeResult{}, fmt.Errorf("create %d pods through %s: %w", b.cfg.pods, via, err)
			}
		case <-progress.C:
			fmt.Fprintf(b.out, "  placing for %.0fs: %d of %d pods bound, %d log entries since the create\n",
				time.Since(sent).Seconds(), len(w.bound), b.cfg.pods, w.rev-w.startRev)
		case <-deadline.C:
			timedOut = true
		case <-ctx.Done():
			return placeResult{}, ctx.Err()
		}
	}
	end := time.Now()
	r := placeResult{pods: b.cfg.pods, placed: len(w.bound), approximate: w.approximate}
	if w.t0.IsZero() {
		return r, fmt.Errorf("the leader's replica never held the %d pods", b.cfg.pods)
	}
	r.elapsed = end.Sub(w.t0)
	if len(w.bound) == b.cfg.pods {
		r.elapsed = w.last.Sub(w.t0)
	}
	r.rate = float64(r.placed) / r.elapsed.Seconds()
	var lat []time.Duration
	for _, t := range w.bound {
		lat = append(lat, t.Sub(w.t0))
	}
	r.p50, r.p99 = stats.Percentile(lat, 50), stats.Percentile(lat, 99)
	r.entries = int(w.rev - w.startRev)
	for _, k := range w.revKinds {
		switch {
		case k&kindBind != 0:
			r.bindTxns++
		default:
			r.otherWrites++
		}
	}
	r.refused = r.entries - len(w.revKinds)
	r.minPerNode, r.maxPerNode, r.overCapacity, err = checkCapacity(store, prefix)
	return r, err
}

// revKind says what the changes of one revision were.
type revKind uint8

const (
	kindBind  revKind = 1 << iota // a pod was bound: a committed bind transaction
	kindOther                     // anything else (kubelet status, node updates)
)

// podWatch follows the leader's replica through its event ring: when all
// the pods exist (t0, the commit of the create as the leader applied it)
// and when each is first seen bound.
type podWatch struct {
	store  *state.Store
	prefix string
	want   int

	rev         uint64 // events up to here are seen
	created     int
	t0, last    time.Time
	startRev    uint64 // the revision that created the pods
	bound       map[string]time.Time
	revKinds    map[uint64]revKind // revisions after startRev with changes
	approximate bool
}

func (w *podWatch) done() bool { return len(w.bound) == w.want }

func (w *podWatch) poll(now time.Time) {
	events, rev, err := w.store.EventsSince(w.rev)
	if errors.Is(err, state.ErrCompacted) {
		// Fell behind the ring: take the bindings from a full list.
		w.approximate = true
		objs, _ := w.store.List("Pod", "default", nil)
		for _, o := range objs {
			if strings.HasPrefix(o.GetName(), w.prefix) {
				w.see(&state.Event{Type: pb.WatchEvent_MODIFIED, Object: o, Revision: rev}, now)
			}
		}
		w.rev = rev
		return
	}
	for i := range events {
		w.see(&events[i], now)
	}
	w.rev = rev
}

func (w *podWatch) see(e *state.Event, now time.Time) {
	o := e.Object
	if o.GetKind() == "Pod" && strings.HasPrefix(o.GetName(), w.prefix) {
		switch e.Type {
		case pb.WatchEvent_ADDED:
			w.created++
			if w.created == w.want {
				w.t0, w.startRev = now, e.Revision
			}
			return
		case pb.WatchEvent_MODIFIED:
			if _, ok := w.bound[o.GetName()]; !ok && binding.NodeName(o) != "" {
				w.bound[o.GetName()] = now
				w.last = now
				w.mark(e.Revision, kindBind)
				return
			}
		}
	}
	if o.GetKind() == "PlacementGuard" {
		w.mark(e.Revision, kindBind)
		return
	}
	w.mark(e.Revision, kindOther)
}

func (w *podWatch) mark(rev uint64, k revKind) {
	if w.t0.IsZero() || rev <= w.startRev {
		return
	}
	w.revKinds[rev] |= k
}

// checkCapacity counts the bench pods on every node and reports the nodes
// whose pods ask for more than the node offers.
func checkCapacity(store *state.Store, prefix string) (lo, hi int, over []string, err error) {
	type use struct {
		pods      int
		cpu, mem  int64
		allocated corev1.ResourceList
	}
	nodes := map[string]*use{}
	nodeObjs, _ := store.List("Node", "", nil)
	for _, o := range nodeObjs {
		var n corev1.Node
		if err := object.Decode(o, &n); err != nil {
			return 0, 0, nil, err
		}
		nodes[n.Name] = &use{allocated: n.Status.Allocatable}
	}
	podObjs, _ := store.List("Pod", "", nil)
	for _, o := range podObjs {
		var p corev1.Pod
		if err := object.Decode(o, &p); err != nil {
			return 0, 0, nil, err
		}
		if p.Spec.NodeName == "" {
			continue
		}
		u := nodes[p.Spec.NodeName]
		if u == nil {
			over = append(over, fmt.Sprintf("pod %s on unknown node %s", p.Name, p.Spec.NodeName))
			continue
		}
		u.pods++
		for _, c := range p.Spec.Containers {
			u.cpu += c.Resources.Requests.Cpu().MilliValue()
			u.mem += c.Resources.Requests.Memory().Value()
		}
	}
	var counts []int
	for name, u := range nodes {
		a := u.allocated
		if u.cpu > a.Cpu().MilliValue() || u.mem > a.Memory().Value() || int64(u.pods) > a.Pods().Value() {
			over = append(over, fmt.Sprintf("%s: %d pods, cpu %dm of %dm, memory %d of %d",
				name, u.pods, u.cpu, a.Cpu().MilliValue(), u.mem, a.Memory().Value()))
		}
		counts = append(counts, u.pods)
	}
	slices.Sort(over)
	lo, hi = stats.Spread(counts)
	return lo, hi, over, nil
}

// clear deletes the repetition's pods and ConfigMaps through the leader
// and waits until the leader's replica has none of them. Under this load a
// starved leader can lose the lead mid-delete; clear then lists what is
// left and deletes it through the new leader.
func (b *bench) clear(ctx context.Context, rep int) error {
	var lastErr error
	err := waitUntil(ctx, 2*time.Minute, func() error {
		l, err := b.c.waitLeader(ctx)
		if err != nil {
			return err
		}
		cfg := b.c.configOf(l)
		conn, err := client.Dial(net.JoinHostPort(cfg.BindAddr, fmt.Sprint(cfg.GRPCPort)))
		if err != nil {
			return err
		}
		defer conn.Close()
		store := l.Node().Store()
		left := 0
		for _, k := range []struct{ kind, prefix string }{{"Pod", podPrefix(rep)}, {"ConfigMap", fmt.Sprintf("raw-r%d-", rep)}} {
			objs, _ := store.List(k.kind, "default", func(o *pb.Object) bool { return strings.HasPrefix(o.GetName(), k.prefix) })
			if len(objs) == 0 {
				continue
			}
			left += len(objs)
			req := &pb.TxnRequest{}
			for _, o := range objs {
				req.Ops = append(req.Ops, &pb.Op{Type: pb.Op_DELETE, Object: &pb.Object{Kind: k.kind, Namespace: "default", Name: o.GetName()}})
			}
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := conn.Txn(cctx, req)
			cancel()
			if err != nil {
				lastErr = fmt.Errorf("delete %d %ss: %w", len(objs), k.kind, err)
				return lastErr
			}
		}
		if left > 0 {
			return fmt.Errorf("%d objects were left", left)
		}
		return nil
	})
	if err != nil && lastErr != nil {
		return fmt.Errorf("%w (last delete error: %v)", err, lastErr)
	}
	return err
}
