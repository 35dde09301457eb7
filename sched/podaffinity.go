package sched

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// topoPair is one topology domain: a node label key and its value.
type topoPair struct{ key, value string }

// podTerm is a compiled PodAffinityTerm of some owner pod.
type podTerm struct {
	sel        labels.Selector
	namespaces []string        // explicit namespaces
	nsSel      labels.Selector // namespaceSelector; nil when absent
	key        string          // topologyKey
	weight     int64           // for preferred terms
	nsLabels   map[string]map[string]string
}

// compilePodTerm compiles t as written in owner's spec. With neither
// namespaces nor a namespaceSelector the term looks at owner's namespace; an
// empty namespaceSelector means every namespace. A nil or malformed label
// selector matches no pod. matchLabelKeys and mismatchLabelKeys add owner's
// value of each key, as the API server would merge them.
func compilePodTerm(owner *corev1.Pod, t corev1.PodAffinityTerm, nsLabels map[string]map[string]string) podTerm {
	pt := podTerm{key: t.TopologyKey, namespaces: t.Namespaces, nsLabels: nsLabels}
	if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
		pt.namespaces = []string{owner.Namespace}
	}
	if t.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector)
		if err != nil {
			s = labels.Nothing()
		}
		pt.nsSel = s
	}
	pt.sel = labels.Nothing()
	if t.LabelSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
		if err == nil {
			pt.sel = s
			pt.sel = addLabelKeys(pt.sel, owner, t.MatchLabelKeys, selection.In)
			pt.sel = addLabelKeys(pt.sel, owner, t.MismatchLabelKeys, selection.NotIn)
		}
	}
	return pt
}

// addLabelKeys narrows sel to pods whose value of each key is (In) or is not
// (NotIn) owner's value; keys owner does not carry are skipped.
func addLabelKeys(sel labels.Selector, owner *corev1.Pod, keys []string, op selection.Operator) labels.Selector {
	for _, k := range keys {
		v, ok := owner.Labels[k]
		if !ok {
			continue
		}
		r, err := labels.NewRequirement(k, op, []string{v})
		if err != nil {
			return labels.Nothing()
		}
		sel = sel.Add(*r)
	}
	return sel
}

// matches reports whether pod q is selected by the term.
func (t podTerm) matches(q *corev1.Pod) bool {
	if !slices.Contains(t.namespaces, q.Namespace) {
		if t.nsSel == nil {
			return false
		}
		nl := labels.Set{corev1.LabelMetadataName: q.Namespace}
		for k, v := range t.nsLabels[q.Namespace] {
			nl[k] = v
		}
		if !t.nsSel.Matches(nl) {
			return false
		}
	}
	return t.sel.Matches(labels.Set(q.Labels))
}

func compileTerms(owner *corev1.Pod, ts []corev1.PodAffinityTerm, nsl map[string]map[string]string) []podTerm {
	out := make([]podTerm, 0, len(ts))
	for _, t := range ts {
		out = append(out, compilePodTerm(owner, t, nsl))
	}
	return out
}

func compileWeighted(owner *corev1.Pod, ts []corev1.WeightedPodAffinityTerm, sign int64, nsl map[string]map[string]string) []podTerm {
	out := make([]podTerm, 0, len(ts))
	for _, t := range ts {
		pt := compilePodTerm(owner, t.PodAffinityTerm, nsl)
		pt.weight = sign * int64(t.Weight)
		out = append(out, pt)
	}
	return out
}

func matchesAll(ts []podTerm, q *corev1.Pod) bool {
	for _, t := range ts {
		if !t.matches(q) {
			return false
		}
	}
	return true
}

// podAffinity is what inter-pod affinity needs of the whole snapshot for one
// placement, counted per topology domain (the Kubernetes InterPodAffinity
// plugin's pre-filter and pre-score state).
type podAffinity struct {
	pod          *corev1.Pod
	affinity     []podTerm        // required affinity of the pod
	antiAffinity []podTerm        // required anti-affinity of the pod
	affinityHits map[topoPair]int // domains with a pod matching all affinity terms
	antiHits     map[topoPair]int // domains with a pod matching an anti-affinity term
	existingAnti map[topoPair]int // domains an existing pod's anti-affinity closes to the pod
	preferred    map[topoPair]int64
}

func newPodAffinity(s Snapshot, pod *corev1.Pod) podAffinity {
	pa := podAffinity{
		pod:          pod,
		affinityHits: map[topoPair]int{},
		antiHits:     map[topoPair]int{},
		existingAnti: map[topoPair]int{},
		preferred:    map[topoPair]int64{},
	}
	var preferred []podTerm
	if a := pod.Spec.Affinity; a != nil {
		if a.PodAffinity != nil {
			pa.affinity = compileTerms(pod, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, s.NamespaceLabels)
			preferred = append(preferred, compileWeighted(pod, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution, 1, s.NamespaceLabels)...)
		}
		if a.PodAntiAffinity != nil {
			pa.antiAffinity = compileTerms(pod, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, s.NamespaceLabels)
			preferred = append(preferred, compileWeighted(pod, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, -1, s.NamespaceLabels)...)
		}
	}
	for i := range s.Nodes {
		n := s.Nodes[i].Node
		if n == nil {
			continue
		}
		for _, q := range s.Nodes[i].Pods {
			if !counted(q, pod) {
				continue
			}
			if len(pa.affinity) > 0 && matchesAll(pa.affinity, q) {
				for _, t := range pa.affinity {
					bump(pa.affinityHits, n, t.key, 1)
				}
			}
			for _, t := range pa.antiAffinity {
				if t.matches(q) {
					bump(pa.antiHits, n, t.key, 1)
				}
			}
			for _, t := range preferred {
				if t.matches(q) {
					bump(pa.preferred, n, t.key, t.weight)
				}
			}
			pa.existing(n, q, s.NamespaceLabels)
		}
	}
	return pa
}

// existing counts what pod q, running on n, asks of pods placed near it:
// its required anti-affinity closes its domain to the pod, its preferred
// terms make its domain more or less attractive (symmetry, as in Kubernetes).
func (pa *podAffinity) existing(n *corev1.Node, q *corev1.Pod, nsl map[string]map[string]string) {
	a := q.Spec.Affinity
	if a == nil {
		return
	}
	if a.PodAntiAffinity != nil {
		for _, t := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if pt := compilePodTerm(q, t, nsl); pt.matches(pa.pod) {
				bump(pa.existingAnti, n, pt.key, 1)
			}
		}
		for _, pt := range compileWeighted(q, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, -1, nsl) {
			if pt.matches(pa.pod) {
				bump(pa.preferred, n, pt.key, pt.weight)
			}
		}
	}
	if a.PodAffinity != nil {
		for _, pt := range compileWeighted(q, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution, 1, nsl) {
			if pt.matches(pa.pod) {
				bump(pa.preferred, n, pt.key, pt.weight)
			}
		}
	}
}

// bump adds v to the domain of n for key; a node without the key is in no
// domain and counts for nothing.
func bump[V int | int64](m map[topoPair]V, n *corev1.Node, key string, v V) {
	if val, ok := n.Labels[key]; ok {
		m[topoPair{key, val}] += v
	}
}

// filter returns why n breaks required pod affinity or anti-affinity, or "".
func (pa *podAffinity) filter(n *corev1.Node) string {
	if !pa.satisfiesAffinity(n) {
		return ReasonPodAffinity
	}
	for _, t := range pa.antiAffinity {
		if v, ok := n.Labels[t.key]; ok && pa.antiHits[topoPair{t.key, v}] > 0 {
			return ReasonPodAntiAffinity
		}
	}
	for k, v := range n.Labels {
		if pa.existingAnti[topoPair{k, v}] > 0 {
			return ReasonExistingPodsAntiAffinity
		}
	}
	return ""
}

// satisfiesAffinity: n must carry every term's topology key, and each of its
// domains must hold a pod matching all terms. The first pod of a group that
// has affinity to itself would otherwise never be placed, so when no pod
// anywhere matches and the pod matches its own terms, any node with the keys
// will do.
func (pa *podAffinity) satisfiesAffinity(n *corev1.Node) bool {
	found := true
	for _, t := range pa.affinity {
		v, ok := n.Labels[t.key]
		if !ok {
			return false
		}
		if pa.affinityHits[topoPair{t.key, v}] <= 0 {
			found = false
		}
	}
	if found {
		return true
	}
	return len(pa.affinityHits) == 0 && matchesAll(pa.affinity, pa.pod)
}

// scores is the preferred pod affinity score: the summed weights of the
// domains each node is in, scaled from the lowest (0) to the highest (100).
func (pa *podAffinity) scores(cs []*candidate) []int64 {
	out := make([]int64, len(cs))
	if len(pa.preferred) == 0 {
		return out
	}
	raw := make([]int64, len(cs))
	for i, c := range cs {
		for k, v := range c.info.Node.Labels {
			raw[i] += pa.preferred[topoPair{k, v}]
		}
	}
	lo, hi := slices.Min(raw), slices.Max(raw)
	if hi == lo {
		return out
	}
	for i, v := range raw {
		out[i] = 100 * (v - lo) / (hi - lo)
	}
	return out
}
