// Package binding is the state machine's half of scheduling: the check that
// runs in apply for every BIND op. Claimers place pods on their own
// possibly stale view and may race each other; this check, run by every
// replica in log order against the pods bound by then, admits a bind only
// if the node can still take the pod, so no sequence of concurrent binds
// overcommits a node.
//
// Everything here must be deterministic: the same log gives the same
// answers on every replica. It reads no clock and no gossip; liveness and
// soft preferences are the claimer's business.
package binding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
	"github.com/shoal-dev/shoal/sched"
)

// PodsByNode is the store index of pods by spec.nodeName.
const PodsByNode = "pods-by-node"

// Indexes are the store indexes the Binder reads.
func Indexes() map[string]state.Index {
	return map[string]state.Index{PodsByNode: {Kind: "Pod", Value: NodeName, SpecOnly: true}}
}

// NodeName returns a stored pod's spec.nodeName, "" when unbound or
// undecodable.
func NodeName(o *pb.Object) string {
	if !bytes.Contains(o.GetSpec(), []byte(`"nodeName"`)) {
		return "" // the common case of a new pod, without decoding
	}
	var peek struct {
		Spec struct {
			NodeName string `json:"nodeName"`
		} `json:"spec"`
	}
	if json.Unmarshal(o.GetSpec(), &peek) != nil {
		return ""
	}
	return peek.Spec.NodeName
}

// SharedHostNetwork reports whether a node's runtime runs pods in the
// host's network namespace, so that every containerPort is a host port.
func SharedHostNetwork(n *corev1.Node) bool {
	return strings.HasPrefix(n.Status.NodeInfo.ContainerRuntimeVersion, "process://")
}

// Binder checks binds. It caches decoded pods and nodes by revision, so a
// bind decodes only what changed since the last bind to that node.
type Binder struct {
	mu    sync.Mutex
	nodes map[string]cachedNode           // node name -> node
	pods  map[string]map[string]cachedPod // node name -> pod key -> pod
}

type cachedNode struct {
	rev  uint64
	node *corev1.Node
}

// cachedPod is a bound pod decoded from its spec. A pod's spec stays put
// after the bind while its status changes often, so the cache is keyed by
// uid and spec, and the phase is read apart.
type cachedPod struct {
	uid      string
	rev      uint64
	spec     string
	pod      *corev1.Pod
	finished bool
}

// New returns a Binder with empty caches.
func New() *Binder {
	return &Binder{nodes: map[string]cachedNode{}, pods: map[string]map[string]cachedPod{}}
}

// Errors of a refused bind, wrapped with detail.
var (
	ErrBound    = errors.New("already bound")
	ErrFinished = errors.New("pod has finished")
	ErrNoNode   = errors.New("no such node")
	ErrNotAPod  = errors.New("only pods are bound")
)

// Bind is a state.Binder: it returns the spec of o with nodeName set to
// node if node can take the pod given the pods bound there in v.
func (b *Binder) Bind(v state.View, o *pb.Object, node string) ([]byte, error) {
	if o.GetKind() != "Pod" {
		return nil, fmt.Errorf("%w, not a %s", ErrNotAPod, o.GetKind())
	}
	var pod corev1.Pod
	if err := object.Decode(o, &pod); err != nil {
		return nil, err
	}
	if pod.Spec.NodeName != "" {
		return nil, fmt.Errorf("%w to %s", ErrBound, pod.Spec.NodeName)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil, fmt.Errorf("%w (%s)", ErrFinished, pod.Status.Phase)
	}
	nodeObj := v.Get("Node", "", node)
	if nodeObj == nil {
		return nil, ErrNoNode
	}
	b.mu.Lock()
	info, err := b.nodeInfo(v, nodeObj)
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if ok, why := sched.Fits(info, &pod); !ok {
		return nil, errors.New(why)
	}
	spec, err := WithNodeName(o.GetSpec(), node)
	if err != nil {
		return nil, err
	}
	// The next bind to this node finds the pod decoded. Should the
	// transaction fail after all, the entry is never read: the cache is
	// rebuilt from the index at each bind.
	pod.Spec.NodeName = node
	b.mu.Lock()
	if m := b.pods[node]; m != nil {
		m[state.KeyOf(o)] = cachedPod{uid: o.GetUid(), spec: string(spec), pod: &pod}
	}
	b.mu.Unlock()
	return spec, nil
}

// nodeInfo builds what sched.Fits needs about a node: the node and its
// pods that hold resources. It refreshes the node's pod cache from v,
// dropping pods no longer there.
func (b *Binder) nodeInfo(v state.View, nodeObj *pb.Object) (sched.NodeInfo, error) {
	name := nodeObj.GetName()
	cn, ok := b.nodes[name]
	if !ok || cn.rev != nodeObj.GetResourceVersion() {
		n := &corev1.Node{}
		if err := object.Decode(nodeObj, n); err != nil {
			return sched.NodeInfo{}, err
		}
		cn = cachedNode{rev: nodeObj.GetResourceVersion(), node: n}
		b.nodes[name] = cn
	}
	old := b.pods[name]
	fresh := map[string]cachedPod{}
	info := sched.NodeInfo{Node: cn.node, Alive: true, SharedHostNetwork: SharedHostNetwork(cn.node)}
	for _, po := range v.Indexed(PodsByNode, name) {
		key := state.KeyOf(po)
		cp, ok := old[key]
		switch {
		case ok && cp.uid == po.GetUid() && cp.rev == po.GetResourceVersion():
		case ok && cp.uid == po.GetUid() && cp.spec == string(po.GetSpec()):
			cp.rev, cp.finished = po.GetResourceVersion(), Finished(po.GetStatus())
		default:
			p := &corev1.Pod{}
			if err := object.Decode(&pb.Object{Kind: po.GetKind(), ApiVersion: po.GetApiVersion(), Namespace: po.GetNamespace(),
				Name: po.GetName(), Uid: po.GetUid(), Spec: po.GetSpec()}, p); err != nil {
				return sched.NodeInfo{}, err
			}
			cp = cachedPod{uid: po.GetUid(), rev: po.GetResourceVersion(), spec: string(po.GetSpec()), pod: p,
				finished: Finished(po.GetStatus())}
		}
		fresh[key] = cp
		if !cp.finished {
			info.Pods = append(info.Pods, cp.pod)
		}
	}
	b.pods[name] = fresh
	return info, nil
}

// Finished reads whether a stored pod status has phase Succeeded or Failed.
func Finished(status []byte) bool {
	if len(status) == 0 {
		return false
	}
	var peek struct {
		Phase corev1.PodPhase `json:"phase"`
	}
	if json.Unmarshal(status, &peek) != nil {
		return false
	}
	return peek.Phase == corev1.PodSucceeded || peek.Phase == corev1.PodFailed
}

// WithNodeName returns the stored spec document (all top-level fields of
// the manifest) with spec.nodeName set, leaving every other byte of the
// pod spec's fields as they were.
func WithNodeName(doc []byte, node string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("stored pod: %w", err)
	}
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(top["spec"], &spec); err != nil {
		return nil, fmt.Errorf("stored pod spec: %w", err)
	}
	if spec == nil {
		spec = map[string]json.RawMessage{}
	}
	n, err := json.Marshal(node)
	if err != nil {
		return nil, err
	}
	spec["nodeName"] = n
	if top["spec"], err = json.Marshal(spec); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}
