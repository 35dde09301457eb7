package sched

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// nodeMatcher is a pod's nodeSelector and node affinity, compiled once.
type nodeMatcher struct {
	selector    labels.Selector // nodeSelector; nil when none
	required    []nodeTerm      // ORed; used only when hasRequired
	hasRequired bool
	preferred   []weightedNodeTerm
}

type weightedNodeTerm struct {
	term   nodeTerm
	weight int64
}

// nodeTerm is a compiled NodeSelectorTerm: its matchExpressions ANDed as a
// label selector, and its matchFields.
type nodeTerm struct {
	valid  bool // false: empty or malformed, matches no node
	labels labels.Selector
	fields []corev1.NodeSelectorRequirement
}

func newNodeMatcher(pod *corev1.Pod) nodeMatcher {
	var m nodeMatcher
	if len(pod.Spec.NodeSelector) > 0 {
		m.selector = labels.SelectorFromSet(pod.Spec.NodeSelector)
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return m
	}
	if req := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		m.hasRequired = true
		for _, t := range req.NodeSelectorTerms {
			m.required = append(m.required, compileNodeTerm(t))
		}
	}
	for _, p := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		if p.Weight == 0 {
			continue
		}
		m.preferred = append(m.preferred, weightedNodeTerm{compileNodeTerm(p.Preference), int64(p.Weight)})
	}
	return m
}

var nodeSelectorOps = map[corev1.NodeSelectorOperator]selection.Operator{
	corev1.NodeSelectorOpIn:           selection.In,
	corev1.NodeSelectorOpNotIn:        selection.NotIn,
	corev1.NodeSelectorOpExists:       selection.Exists,
	corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
	corev1.NodeSelectorOpGt:           selection.GreaterThan,
	corev1.NodeSelectorOpLt:           selection.LessThan,
}

// compileNodeTerm compiles t. As in Kubernetes, a term with neither
// expressions nor fields matches nothing, and so does a malformed one
// (unknown operator, Gt with a non-integer, In with no values, a field other
// than metadata.name).
func compileNodeTerm(t corev1.NodeSelectorTerm) nodeTerm {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return nodeTerm{}
	}
	sel := labels.NewSelector()
	for _, e := range t.MatchExpressions {
		op, ok := nodeSelectorOps[e.Operator]
		if !ok {
			return nodeTerm{}
		}
		r, err := labels.NewRequirement(e.Key, op, e.Values)
		if err != nil {
			return nodeTerm{}
		}
		sel = sel.Add(*r)
	}
	for _, f := range t.MatchFields {
		if f.Key != "metadata.name" || (f.Operator != corev1.NodeSelectorOpIn && f.Operator != corev1.NodeSelectorOpNotIn) || len(f.Values) == 0 {
			return nodeTerm{}
		}
	}
	return nodeTerm{valid: true, labels: sel, fields: t.MatchFields}
}

func (t nodeTerm) matches(n *corev1.Node) bool {
	if !t.valid || !t.labels.Matches(labels.Set(n.Labels)) {
		return false
	}
	for _, f := range t.fields {
		in := slices.Contains(f.Values, n.Name)
		if in != (f.Operator == corev1.NodeSelectorOpIn) {
			return false
		}
	}
	return true
}

// matches reports whether n satisfies the nodeSelector and the required node
// affinity (terms ORed).
func (m nodeMatcher) matches(n *corev1.Node) bool {
	if m.selector != nil && !m.selector.Matches(labels.Set(n.Labels)) {
		return false
	}
	if !m.hasRequired {
		return true
	}
	for _, t := range m.required {
		if t.matches(n) {
			return true
		}
	}
	return false
}

// scores is the preferred node affinity score: the sum of the weights of the
// preferred terms each node matches, scaled so the best node has 100.
func (m nodeMatcher) scores(cs []*candidate) []int64 {
	raw := make([]int64, len(cs))
	for i, c := range cs {
		for _, p := range m.preferred {
			if p.term.matches(c.info.Node) {
				raw[i] += p.weight
			}
		}
	}
	return normalize(raw, false)
}

// unschedulableTaint is how Kubernetes models a cordon: a pod tolerating it
// (DaemonSet pods do) may still be placed on a cordoned node.
var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// tolerated reports whether one of tols tolerates taint, by the Kubernetes
// rules: an empty effect matches every effect; Exists matches any value, and
// with an empty key any taint; Equal (or no operator) needs the same key and
// value. An empty key with Equal is invalid in Kubernetes and tolerates nothing
// here.
func tolerates(tols []corev1.Toleration, taint corev1.Taint) bool {
	for _, t := range tols {
		if t.Effect != "" && t.Effect != taint.Effect {
			continue
		}
		switch t.Operator {
		case corev1.TolerationOpExists:
			if t.Key == "" || t.Key == taint.Key {
				return true
			}
		case "", corev1.TolerationOpEqual:
			if t.Key != "" && t.Key == taint.Key && t.Value == taint.Value {
				return true
			}
		}
	}
	return false
}

// untolerated returns the first NoSchedule or NoExecute taint not tolerated.
func untolerated(taints []corev1.Taint, tols []corev1.Toleration) (corev1.Taint, bool) {
	for _, t := range taints {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerates(tols, t) {
			return t, true
		}
	}
	return corev1.Taint{}, false
}

// preferNoScheduleScores scores nodes down by how many PreferNoSchedule
// taints the pod does not tolerate: fewest gets 100.
func preferNoScheduleScores(cs []*candidate, tols []corev1.Toleration) []int64 {
	raw := make([]int64, len(cs))
	for i, c := range cs {
		for _, t := range c.info.Node.Spec.Taints {
			if t.Effect == corev1.TaintEffectPreferNoSchedule && !tolerates(tols, t) {
				raw[i]++
			}
		}
	}
	return normalize(raw, true)
}
