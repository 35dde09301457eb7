package sched

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Policy chooses how the resource score ranks nodes that can all run a pod.
type Policy int

const (
	// PolicySpread prefers the least-allocated node, so load spreads out
	// (the Kubernetes default, LeastAllocated). It is the zero value.
	PolicySpread Policy = iota
	// PolicyBinpack prefers the most-allocated node, so pods pack onto few
	// nodes and whole nodes stay free (Kubernetes MostAllocated).
	PolicyBinpack
)

// String returns the policy's name as ParsePolicy accepts it.
func (p Policy) String() string {
	switch p {
	case PolicySpread:
		return "spread"
	case PolicyBinpack:
		return "binpack"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy turns a flag or config value ("spread", "binpack"; "" means
// spread) into a Policy.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "spread":
		return PolicySpread, nil
	case "binpack":
		return PolicyBinpack, nil
	}
	return 0, fmt.Errorf("unknown placement policy %q: want spread or binpack", s)
}

// Reasons a node is filtered out, as the Kubernetes scheduler words them so
// that describe output reads the same. A taint refusal names the taint (see
// Decision.Message) and a missing extended resource reads "Insufficient
// <name>"; every other reason is one of these.
const (
	ReasonNotReady                   = "node(s) were not ready"
	ReasonUnschedulable              = "node(s) were unschedulable"
	ReasonNodeName                   = "node(s) didn't match the requested node name"
	ReasonNodeAffinity               = "node(s) didn't match Pod's node affinity/selector"
	ReasonHostPorts                  = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods                = "Too many pods"
	ReasonInsufficientCPU            = "Insufficient cpu"
	ReasonInsufficientMemory         = "Insufficient memory"
	ReasonTopologySpread             = "node(s) didn't match pod topology spread constraints"
	ReasonTopologySpreadMissingLabel = "node(s) didn't match pod topology spread constraints (missing required label)"
	ReasonPodAffinity                = "node(s) didn't match pod affinity rules"
	ReasonPodAntiAffinity            = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingPodsAntiAffinity   = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// untoleratedTaint is the reason for a NoSchedule or NoExecute taint the pod
// does not tolerate: "node(s) had untolerated taint {dedicated: gpu}".
func untoleratedTaint(t corev1.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}

// NodeInfo is one node as the placing agent sees it.
type NodeInfo struct {
	// Node carries labels, spec.taints, spec.unschedulable,
	// status.allocatable (cpu, memory, pods, extended resources; status.capacity
	// when allocatable is empty) and status.conditions (Ready). An absent
	// "pods" allocatable means no pod-count limit. A NodeInfo with a nil Node
	// is ignored by Place.
	Node *corev1.Node
	// Alive is what gossip says; a dead node is never chosen.
	Alive bool
	// Pods are the pods bound to this node (spec.nodeName) that have not
	// terminated. Pods in phase Succeeded or Failed are ignored anyway, as is
	// the pod being placed if it is listed (same uid, or same namespace and
	// name when it has no uid), so a re-check of a bind counts it once.
	Pods []*corev1.Pod
	// SharedHostNetwork says the node's runtime runs containers in the host's
	// network namespace (the process runtime), so every containerPort of a pod
	// there is also a host port.
	SharedHostNetwork bool
}

// Snapshot is the cluster as one placement sees it: every node with its pods.
// Pods on all nodes, placeable or not, count for pod (anti-)affinity and
// topology spread.
type Snapshot struct {
	Nodes []NodeInfo
	// NamespaceLabels are the labels of namespaces, for the namespaceSelector
	// of pod affinity terms. A namespace missing here has only the automatic
	// kubernetes.io/metadata.name label.
	NamespaceLabels map[string]map[string]string
}

// Decision is the outcome of Place.
type Decision struct {
	// Node is the chosen node, "" when no node can run the pod.
	Node string
	// Reasons maps each filtered-out node to the first filter it failed.
	Reasons map[string]string
	// Score is the total score of each node that passed every filter.
	Score map[string]int64
}

// Message renders an unschedulable decision as kubectl describe shows it:
// "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector,
// 2 Insufficient cpu." total is the number of nodes considered. It returns ""
// when the pod was placed.
func (d Decision) Message(total int) string {
	if d.Node != "" {
		return ""
	}
	counts := map[string]int{}
	for _, r := range d.Reasons {
		counts[r]++
	}
	parts := make([]string, 0, len(counts))
	for r, c := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", c, r))
	}
	// Sorted as whole "count reason" strings, like the Kubernetes FitError.
	sort.Strings(parts)
	if len(parts) == 0 {
		return fmt.Sprintf("0/%d nodes are available.", total)
	}
	return fmt.Sprintf("0/%d nodes are available: %s.", total, strings.Join(parts, ", "))
}

// Place chooses the node for pod among s.Nodes. It filters every node,
// scores the feasible ones and takes the highest. Score components, each
// 0..100 and summed: least- (spread) or most-allocated (binpack) cpu and
// memory; preferred node affinity; untolerated PreferNoSchedule taints;
// preferred pod affinity and anti-affinity (the pod's and, symmetrically,
// existing pods'); ScheduleAnyway topology spread; and, under PolicySpread
// only, the spread of the replicas of the pod's controller. Ties go to the
// finer resource fit for the policy, then to the smallest node name, so the
// decision does not depend on the order of the nodes. A nil pod is placed
// nowhere.
func Place(s Snapshot, pod *corev1.Pod, policy Policy) Decision {
	d := Decision{Reasons: map[string]string{}, Score: map[string]int64{}}
	if pod == nil {
		return d
	}
	p := newPlacement(s, pod)
	var feasible []*candidate
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.Node == nil {
			continue
		}
		c := &candidate{info: n, usage: newUsage(n, pod)}
		if r := p.filter(c); r != "" {
			d.Reasons[n.Node.Name] = r
			continue
		}
		feasible = append(feasible, c)
	}
	if len(feasible) == 0 {
		return d
	}
	p.score(feasible, policy)
	best := feasible[0]
	for _, c := range feasible {
		d.Score[c.info.Node.Name] = c.score
		if better(c, best, policy) {
			best = c
		}
	}
	d.Node = best.info.Node.Name
	return d
}

// candidate is a node under consideration by one Place call.
type candidate struct {
	info  *NodeInfo
	usage usage
	score int64
	fill  float64 // exact allocated fraction after placing, for ties
}

// better reports whether a outranks b.
func better(a, b *candidate, policy Policy) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	if a.fill != b.fill {
		if policy == PolicyBinpack {
			return a.fill > b.fill
		}
		return a.fill < b.fill
	}
	return a.info.Node.Name < b.info.Node.Name
}

// placement holds what one Place call derives from the pod and the whole
// snapshot once, before looking at each node.
type placement struct {
	pod      *corev1.Pod
	req      demand
	nodeAff  nodeMatcher
	affinity podAffinity
	spread   topologySpread
}

func newPlacement(s Snapshot, pod *corev1.Pod) *placement {
	p := &placement{
		pod:     pod,
		req:     podDemand(pod),
		nodeAff: newNodeMatcher(pod),
	}
	p.affinity = newPodAffinity(s, pod)
	p.spread = newTopologySpread(s, pod, p.nodeAff)
	return p
}

// filter returns why c cannot run the pod, or "" when it can. The order is
// the Kubernetes plugin order, so the reason reported is the one kubectl
// would show.
func (p *placement) filter(c *candidate) string {
	n := c.info
	if !n.Alive || !ready(n.Node) {
		return ReasonNotReady
	}
	if n.Node.Spec.Unschedulable && !tolerates(p.pod.Spec.Tolerations, unschedulableTaint) {
		return ReasonUnschedulable
	}
	if p.pod.Spec.NodeName != "" && p.pod.Spec.NodeName != n.Node.Name {
		return ReasonNodeName
	}
	if t, ok := untolerated(n.Node.Spec.Taints, p.pod.Spec.Tolerations); ok {
		return untoleratedTaint(t)
	}
	if !p.nodeAff.matches(n.Node) {
		return ReasonNodeAffinity
	}
	if r := c.usage.fits(p.req, podHostPorts(p.pod, n.SharedHostNetwork)); r != "" {
		return r
	}
	if r := p.spread.filter(n.Node); r != "" {
		return r
	}
	return p.affinity.filter(n.Node)
}

// score sets c.score and c.fill of every feasible candidate.
func (p *placement) score(cs []*candidate, policy Policy) {
	for _, c := range cs {
		c.score, c.fill = resourceScore(c.usage, p.req, policy)
	}
	parts := [][]int64{
		p.nodeAff.scores(cs),
		preferNoScheduleScores(cs, p.pod.Spec.Tolerations),
		p.affinity.scores(cs),
		p.spread.scores(cs),
	}
	if policy == PolicySpread {
		parts = append(parts, ownerSpreadScores(cs, p.pod))
	}
	for _, part := range parts {
		for i, v := range part {
			cs[i].score += v
		}
	}
}

// ready reports whether the node's Ready condition is True.
func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// samePod reports whether a and b are the same pod: same uid, or same
// namespace and name when neither has a uid.
func samePod(a, b *corev1.Pod) bool {
	if a.UID != "" || b.UID != "" {
		return a.UID == b.UID
	}
	return a.Namespace == b.Namespace && a.Name == b.Name
}

// counted reports whether q, listed on a node, occupies it as seen by a
// placement of pod: it is not pod itself and has not terminated.
func counted(q, pod *corev1.Pod) bool {
	if q == nil || samePod(q, pod) {
		return false
	}
	return q.Status.Phase != corev1.PodSucceeded && q.Status.Phase != corev1.PodFailed
}

// normalize maps raw scores to 0..100 with the largest at 100 (or, reversed,
// the smallest raw at 100). All zero gives 0, or 100 when reversed, as the
// Kubernetes DefaultNormalizeScore does.
func normalize(raw []int64, reverse bool) []int64 {
	var max int64
	for _, v := range raw {
		if v > max {
			max = v
		}
	}
	out := make([]int64, len(raw))
	for i, v := range raw {
		switch {
		case max == 0 && reverse:
			out[i] = 100
		case max == 0:
			out[i] = 0
		case reverse:
			out[i] = 100 * (max - v) / max
		default:
			out[i] = 100 * v / max
		}
	}
	return out
}
