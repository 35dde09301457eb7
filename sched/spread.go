package sched

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// spreadConstraint is a compiled TopologySpreadConstraint with the number
// of matching pods in each domain of its topology key.
type spreadConstraint struct {
	maxSkew    int64
	key        string
	sel        labels.Selector
	minDomains int
	counts     map[string]int64 // domain value -> matching pods
	selfMatch  int64            // 1 when the pod matches its own selector
}

// minCount is the global minimum the skew is measured from; with fewer
// domains than minDomains it is 0, so pods go to new domains.
func (c *spreadConstraint) minCount() int64 {
	if len(c.counts) == 0 || len(c.counts) < c.minDomains {
		return 0
	}
	first := true
	var m int64
	for _, v := range c.counts {
		if first || v < m {
			m, first = v, false
		}
	}
	return m
}

// topologySpread is the pod's topologySpreadConstraints, counted over the
// snapshot (the Kubernetes PodTopologySpread plugin).
type topologySpread struct {
	hard, soft []*spreadConstraint
}

func newTopologySpread(s Snapshot, pod *corev1.Pod, nodeAff nodeMatcher) topologySpread {
	var ts topologySpread
	type policy struct{ affinity, taints bool }
	var policies []policy
	var all []*spreadConstraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		sc := &spreadConstraint{maxSkew: int64(c.MaxSkew), key: c.TopologyKey, counts: map[string]int64{}}
		if c.MinDomains != nil {
			sc.minDomains = int(*c.MinDomains)
		}
		sc.sel = labels.Nothing()
		if c.LabelSelector != nil {
			if sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector); err == nil {
				sc.sel = addLabelKeys(sel, pod, c.MatchLabelKeys, selection.In)
			}
		}
		if sc.sel.Matches(labels.Set(pod.Labels)) {
			sc.selfMatch = 1
		}
		// Defaults: honor node affinity, ignore taints.
		policies = append(policies, policy{
			affinity: c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor,
			taints:   c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor,
		})
		all = append(all, sc)
		if c.WhenUnsatisfiable == corev1.ScheduleAnyway {
			ts.soft = append(ts.soft, sc)
		} else {
			ts.hard = append(ts.hard, sc)
		}
	}
	if len(all) == 0 {
		return ts
	}
	for i := range s.Nodes {
		n := s.Nodes[i].Node
		if n == nil {
			continue
		}
		for j, sc := range all {
			// Kubernetes skips a node lacking any constraint's key for all of
			// them; here it only leaves the domains of that key.
			v, ok := n.Labels[sc.key]
			if !ok {
				continue
			}
			if policies[j].affinity && !nodeAff.matches(n) {
				continue
			}
			if _, bad := untolerated(n.Spec.Taints, pod.Spec.Tolerations); policies[j].taints && bad {
				continue
			}
			sc.counts[v] += 0 // an eligible node makes its domain exist
			for _, q := range s.Nodes[i].Pods {
				if counted(q, pod) && q.DeletionTimestamp == nil && q.Namespace == pod.Namespace && sc.sel.Matches(labels.Set(q.Labels)) {
					sc.counts[v]++
				}
			}
		}
	}
	return ts
}

// filter returns why placing the pod on n would skew a DoNotSchedule
// constraint beyond maxSkew, or "".
func (ts topologySpread) filter(n *corev1.Node) string {
	for _, c := range ts.hard {
		if _, ok := n.Labels[c.key]; !ok {
			return ReasonTopologySpreadMissingLabel
		}
	}
	for _, c := range ts.hard {
		if c.counts[n.Labels[c.key]]+c.selfMatch-c.minCount() > c.maxSkew {
			return ReasonTopologySpread
		}
	}
	return ""
}

// scores favours nodes whose domains hold fewest pods matching the
// ScheduleAnyway constraints; a node missing a key scores 0.
func (ts topologySpread) scores(cs []*candidate) []int64 {
	out := make([]int64, len(cs))
	if len(ts.soft) == 0 {
		return out
	}
	raw := make([]int64, len(cs))
	has := make([]bool, len(cs))
	var max int64
	for i, cand := range cs {
		has[i] = true
		for _, c := range ts.soft {
			v, ok := cand.info.Node.Labels[c.key]
			if !ok {
				has[i] = false
				break
			}
			raw[i] += c.counts[v]
		}
		if has[i] && raw[i] > max {
			max = raw[i]
		}
	}
	for i := range cs {
		switch {
		case !has[i]:
		case max == 0:
			out[i] = 100
		default:
			out[i] = 100 * (max - raw[i]) / max
		}
	}
	return out
}

// ownerSpreadScores spreads the replicas of one controller (the pods sharing
// the pod's controller owner reference) over nodes when the pod states no
// spread constraints of its own: the node with fewest of them gets 100.
// Without it, equal nodes with ample room tie and every replica would land on
// the first by name.
func ownerSpreadScores(cs []*candidate, pod *corev1.Pod) []int64 {
	out := make([]int64, len(cs))
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.UID == "" || len(pod.Spec.TopologySpreadConstraints) > 0 {
		return out
	}
	raw := make([]int64, len(cs))
	for i, c := range cs {
		for _, q := range c.info.Pods {
			if !counted(q, pod) || q.Namespace != pod.Namespace {
				continue
			}
			if o := metav1.GetControllerOf(q); o != nil && o.UID == owner.UID {
				raw[i]++
			}
		}
	}
	return normalize(raw, true)
}
