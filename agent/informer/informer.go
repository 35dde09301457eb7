// Package informer keeps the pods and nodes of the local replica decoded,
// following the store's event ring so that each change is decoded once per
// agent instead of once per reader per wake-up. The scheduler, the kubelet
// and the controllers read from it.
//
// Everything it hands out is shared and read-only: callers copy before they
// change anything.
package informer

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/binding"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Pod is one stored pod with its decoded form.
type Pod struct {
	Obj *pb.Object
	Pod *corev1.Pod
}

// Terminal reports whether the pod has finished (Succeeded or Failed).
func (p Pod) Terminal() bool {
	return p.Pod.Status.Phase == corev1.PodSucceeded || p.Pod.Status.Phase == corev1.PodFailed
}

// Node is one stored node with its decoded form.
type Node struct {
	Obj  *pb.Object
	Node *corev1.Node
}

// entry is one stored pod, decoded when first read: an agent reads the
// pods bound to it and, while it has pods to place, those that hold
// resources, so most agents never decode most pods.
type entry struct {
	obj  *pb.Object
	node string      // spec.nodeName
	pod  *corev1.Pod // nil until read
}

// Informer is the decoded view of one store. It is safe for concurrent use.
type Informer struct {
	store *state.Store
	log   *slog.Logger

	mu      sync.Mutex
	rev     uint64 // events up to here are applied
	synced  bool
	pods    map[string]*entry            // store key -> pod
	byNode  map[string]map[string]*entry // spec.nodeName -> key -> pod; "" holds the unbound
	nodes   map[string]Node              // node name -> node
	decodes int                          // objects decoded in full so far, for tests
	// statusDecodes counts pods derived from their previous form (a status
	// report decodes only the status, a bind nothing).
	statusDecodes int
}

// New returns an informer over store; the first read lists everything.
func New(store *state.Store, log *slog.Logger) *Informer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Informer{store: store, log: log}
}

// Sync brings the informer up to the store's current revision and returns
// it. Readers call it first; it costs only the changes since the last call.
func (in *Informer) Sync() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.syncLocked()
	return in.rev
}

func (in *Informer) syncLocked() {
	if in.synced {
		events, rev, err := in.store.EventsSince(in.rev)
		if err == nil {
			for i := range events {
				in.applyLocked(&events[i])
			}
			in.rev = rev
			return
		}
		if !errors.Is(err, state.ErrCompacted) {
			in.log.Warn("informer: follow store events", "err", err)
		}
		// Fell behind the ring (or the store was restored from a
		// snapshot): list again, reusing what is unchanged.
	}
	in.relistLocked()
}

func (in *Informer) relistLocked() {
	podObjs, rev := in.store.List("Pod", "", nil)
	nodeObjs, _ := in.store.List("Node", "", nil)
	old := in.pods
	in.pods = make(map[string]*entry, len(podObjs))
	in.byNode = map[string]map[string]*entry{}
	for _, o := range podObjs {
		key := state.KeyOf(o)
		if e, ok := old[key]; ok && e.obj.GetResourceVersion() == o.GetResourceVersion() && e.obj.GetUid() == o.GetUid() {
			in.putPodLocked(key, e)
			continue
		}
		in.putPodLocked(key, &entry{obj: o, node: binding.NodeName(o)})
	}
	in.nodes = make(map[string]Node, len(nodeObjs))
	for _, o := range nodeObjs {
		in.decodeNodeLocked(o)
	}
	// The lists may be newer than rev; events between are applied again
	// by the next sync, which is harmless: applying is idempotent.
	in.rev = rev
	in.synced = true
}

func (in *Informer) applyLocked(e *state.Event) {
	o := e.Object
	switch o.GetKind() {
	case "Pod":
		key := state.KeyOf(o)
		if e.Type == pb.WatchEvent_DELETED {
			in.dropPodLocked(key)
			return
		}
		old, had := in.pods[key]
		if had && old.obj.GetResourceVersion() >= o.GetResourceVersion() && old.obj.GetUid() == o.GetUid() {
			return
		}
		in.dropPodLocked(key)
		next := &entry{obj: o}
		if had && bytes.Equal(old.obj.GetSpec(), o.GetSpec()) {
			next.node = old.node // a status report: the spec is as it was
		} else {
			next.node = binding.NodeName(o)
		}
		if had && old.pod != nil {
			next.pod = in.deriveLocked(key, old, next)
		}
		in.putPodLocked(key, next)
	case "Node":
		if e.Type == pb.WatchEvent_DELETED {
			delete(in.nodes, o.GetName())
			return
		}
		if n, ok := in.nodes[o.GetName()]; ok && n.Obj.GetResourceVersion() >= o.GetResourceVersion() {
			return
		}
		in.decodeNodeLocked(o)
	}
}

// deriveLocked returns the decoded form of next from the decoded old when
// the change is one the kubelet or a bind makes: a status report (decode
// only the status) or a bind (set nodeName); nil otherwise, to be decoded
// when read.
func (in *Informer) deriveLocked(key string, old, next *entry) *corev1.Pod {
	o := next.obj
	if old.pod.Spec.NodeName == "" && justBound(old.obj, o, next.node) {
		pod := *old.pod
		pod.Spec.NodeName = next.node
		pod.ResourceVersion = strconv.FormatUint(o.GetResourceVersion(), 10)
		in.statusDecodes++
		return &pod
	}
	if !onlyStatusChanged(old.obj, o) {
		return nil
	}
	pod := *old.pod
	pod.Status = corev1.PodStatus{}
	if len(o.GetStatus()) > 0 {
		if err := json.Unmarshal(o.GetStatus(), &pod.Status); err != nil {
			in.log.Warn("informer: decode pod status", "pod", key, "err", err)
			return nil
		}
	}
	pod.ResourceVersion = strconv.FormatUint(o.GetResourceVersion(), 10)
	in.statusDecodes++
	return &pod
}

// decodedLocked returns e's pod, decoding it on first read; nil when it
// cannot be decoded.
func (in *Informer) decodedLocked(e *entry) *corev1.Pod {
	if e.pod == nil {
		var pod corev1.Pod
		if err := object.Decode(e.obj, &pod); err != nil {
			in.log.Warn("informer: decode pod", "pod", state.KeyOf(e.obj), "err", err)
			return nil
		}
		in.decodes++
		e.pod = &pod
	}
	return e.pod
}

// justBound reports whether b is a with spec.nodeName set by a bind and
// nothing else changed.
func justBound(a, b *pb.Object, node string) bool {
	if node == "" || !bytes.Equal(a.GetStatus(), b.GetStatus()) {
		return false
	}
	want, err := binding.WithNodeName(a.GetSpec(), node)
	if err != nil || !bytes.Equal(want, b.GetSpec()) {
		return false
	}
	return onlyStatusChanged(a, &pb.Object{Uid: b.GetUid(), Generation: b.GetGeneration(), ApiVersion: b.GetApiVersion(),
		Spec: a.GetSpec(), Labels: b.GetLabels(), Annotations: b.GetAnnotations(), OwnerReferences: b.GetOwnerReferences()})
}

// onlyStatusChanged reports whether b differs from a at most in status and
// resource version.
func onlyStatusChanged(a, b *pb.Object) bool {
	return a.GetUid() == b.GetUid() && a.GetGeneration() == b.GetGeneration() &&
		a.GetApiVersion() == b.GetApiVersion() && bytes.Equal(a.GetSpec(), b.GetSpec()) &&
		maps.Equal(a.GetLabels(), b.GetLabels()) && maps.Equal(a.GetAnnotations(), b.GetAnnotations()) &&
		slices.EqualFunc(a.GetOwnerReferences(), b.GetOwnerReferences(), func(x, y *pb.OwnerReference) bool {
			return proto.Equal(x, y)
		})
}

func (in *Informer) putPodLocked(key string, e *entry) {
	in.pods[key] = e
	m := in.byNode[e.node]
	if m == nil {
		m = map[string]*entry{}
		in.byNode[e.node] = m
	}
	m[key] = e
}

func (in *Informer) dropPodLocked(key string) {
	e, ok := in.pods[key]
	if !ok {
		return
	}
	delete(in.pods, key)
	if m := in.byNode[e.node]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(in.byNode, e.node)
		}
	}
}

func (in *Informer) decodeNodeLocked(o *pb.Object) {
	var n corev1.Node
	if err := object.Decode(o, &n); err != nil {
		in.log.Warn("informer: decode node", "node", o.GetName(), "err", err)
		delete(in.nodes, o.GetName())
		return
	}
	in.decodes++
	in.nodes[o.GetName()] = Node{Obj: o, Node: &n}
}

// PodsOn returns the pods bound to node (every phase), sorted by namespace
// and name. PodsOn("") returns the pods not bound yet.
func (in *Informer) PodsOn(node string) []Pod {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.syncLocked()
	return in.decodedSortedLocked(in.byNode[node])
}

// Unbound returns the stored pods not bound yet, undecoded, sorted by
// namespace and name: the scheduler decodes only those it claims.
func (in *Informer) Unbound() []*pb.Object {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.syncLocked()
	out := make([]*pb.Object, 0, len(in.byNode[""]))
	for _, e := range in.byNode[""] {
		out = append(out, e.obj)
	}
	slices.SortFunc(out, func(a, b *pb.Object) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	return out
}

// Objects returns every stored pod, undecoded, in no particular order.
func (in *Informer) Objects() []*pb.Object {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.syncLocked()
	out := make([]*pb.Object, 0, len(in.pods))
	for _, e := range in.pods {
		out = append(out, e.obj)
	}
	return out
}

// Decode returns the decoded form of the given stored pods (what the
// informer holds for them when at the same revision, else decoded afresh),
// in the same order; pods that cannot be decoded are left out.
func (in *Informer) Decode(objs []*pb.Object) []Pod {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]Pod, 0, len(objs))
	for _, o := range objs {
		e, ok := in.pods[state.KeyOf(o)]
		if !ok || e.obj != o {
			e = &entry{obj: o, node: binding.NodeName(o)}
		}
		if pod := in.decodedLocked(e); pod != nil {
			out = append(out, Pod{Obj: o, Pod: pod})
		}
	}
	return out
}

// Pods returns every pod, sorted by namespace and name.
func (in *Informer) Pods() []Pod {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.syncLocked()
	return in.decodedSortedLocked(in.pods)
}

// Bound returns, for every node name, the pods bound there that have not
// terminated: what holds the node's resources.
func (in *Informer) Bound() map[string][]*corev1.Pod {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.syncLocked()
	out := make(map[string][]*corev1.Pod, len(in.byNode))
	for node, m := range in.byNode {
		if node == "" {
			continue
		}
		pods := make([]*corev1.Pod, 0, len(m))
		for _, e := range m {
			if binding.Finished(e.obj.GetStatus()) {
				continue
			}
			if pod := in.decodedLocked(e); pod != nil {
				pods = append(pods, pod)
			}
		}
		out[node] = pods
	}
	return out
}

// Nodes returns every node, sorted by name.
func (in *Informer) Nodes() []Node {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.syncLocked()
	out := make([]Node, 0, len(in.nodes))
	for _, n := range in.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Node.Name, b.Node.Name) })
	return out
}

// Decodes counts the objects decoded so far.
func (in *Informer) Decodes() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.decodes
}

func (in *Informer) decodedSortedLocked(m map[string]*entry) []Pod {
	out := make([]Pod, 0, len(m))
	for _, e := range m {
		if pod := in.decodedLocked(e); pod != nil {
			out = append(out, Pod{Obj: e.obj, Pod: pod})
		}
	}
	slices.SortFunc(out, func(a, b Pod) int {
		if c := strings.Compare(a.Obj.GetNamespace(), b.Obj.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.Obj.GetName(), b.Obj.GetName())
	})
	return out
}
