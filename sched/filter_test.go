package sched

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPlaceFilters(t *testing.T) {
	sidecar := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		name    string
		nodes   []NodeInfo
		nsl     map[string]map[string]string
		pod     *corev1.Pod
		want    string            // chosen node, "" for none
		reasons map[string]string // every filtered node
	}{
		// Readiness and cordon.
		{
			name:    "dead node",
			nodes:   []NodeInfo{{Node: mkNode("a", 1000, 1024)}, alive(mkNode("b", 1000, 1024))},
			pod:     mkPod("p"),
			want:    "b",
			reasons: map[string]string{"a": ReasonNotReady},
		},
		{
			name:    "Ready condition False",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, notReady))},
			pod:     mkPod("p"),
			reasons: map[string]string{"a": ReasonNotReady},
		},
		{
			name: "no Ready condition",
			nodes: []NodeInfo{alive(mkNode("a", 1000, 1024, func(n *corev1.Node) {
				n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}}
			}))},
			pod:     mkPod("p"),
			reasons: map[string]string{"a": ReasonNotReady},
		},
		{
			name:    "cordoned",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, cordoned)), alive(mkNode("b", 1000, 1024))},
			pod:     mkPod("p"),
			want:    "b",
			reasons: map[string]string{"a": ReasonUnschedulable},
		},
		{
			name:    "cordoned but the pod tolerates the unschedulable taint",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, cordoned))},
			pod:     mkPod("p", tolerate(corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})),
			want:    "a",
			reasons: map[string]string{},
		},
		{
			name:    "spec.nodeName names another node",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024)), alive(mkNode("b", 1000, 1024))},
			pod:     mkPod("p", func(p *corev1.Pod) { p.Spec.NodeName = "b" }),
			want:    "b",
			reasons: map[string]string{"a": ReasonNodeName},
		},

		// Resources and pod count.
		{
			name:    "insufficient cpu counts pods already there",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", requests("600m", ""))), alive(mkNode("b", 1000, 1024))},
			pod:     mkPod("p", requests("500m", "")),
			want:    "b",
			reasons: map[string]string{"a": ReasonInsufficientCPU},
		},
		{
			name:    "exactly full fits",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", requests("500m", "512Mi")))},
			pod:     mkPod("p", requests("500m", "512Mi")),
			want:    "a",
			reasons: map[string]string{},
		},
		{
			name:    "insufficient memory",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", requests("", "800Mi")))},
			pod:     mkPod("p", requests("", "300Mi")),
			reasons: map[string]string{"a": ReasonInsufficientMemory},
		},
		{
			name:    "cpu reported before memory",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024))},
			pod:     mkPod("p", requests("2", "2Gi")),
			reasons: map[string]string{"a": ReasonInsufficientCPU},
		},
		{
			name:    "limits without requests count as requests",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", limits("800m", "")))},
			pod:     mkPod("p", limits("300m", "")),
			reasons: map[string]string{"a": ReasonInsufficientCPU},
		},
		{
			name:    "a pod requesting nothing fits on a full node",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", requests("1", "1Gi")))},
			pod:     mkPod("p"),
			want:    "a",
			reasons: map[string]string{},
		},
		{
			name: "terminated pods free their requests",
			nodes: []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", requests("1", ""), func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodSucceeded
			}))},
			pod:     mkPod("p", requests("1", "")),
			want:    "a",
			reasons: map[string]string{},
		},
		{
			name:    "too many pods",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, maxPods(2)), pods("x", 2)...), alive(mkNode("b", 1000, 1024, maxPods(3)), pods("y", 2)...)},
			pod:     mkPod("p"),
			want:    "b",
			reasons: map[string]string{"a": ReasonTooManyPods},
		},
		{
			name: "no pods allocatable means no pod-count limit",
			nodes: []NodeInfo{alive(mkNode("a", 1000, 1024, func(n *corev1.Node) {
				delete(n.Status.Allocatable, corev1.ResourcePods)
			}), pods("x", 200)...)},
			pod:     mkPod("p"),
			want:    "a",
			reasons: map[string]string{},
		},
		{
			name:  "extended resource the node lacks",
			nodes: []NodeInfo{alive(mkNode("a", 1000, 1024)), alive(mkNode("b", 1000, 1024, allocatable("example.com/gpu", "1")))},
			pod: mkPod("p", func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"example.com/gpu": resource.MustParse("1")}
			}),
			want:    "b",
			reasons: map[string]string{"a": "Insufficient example.com/gpu"},
		},
		{
			name:  "a sidecar adds to the containers",
			nodes: []NodeInfo{alive(mkNode("a", 1000, 1024))},
			pod: mkPod("p", requests("600m", ""), func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "s", RestartPolicy: &sidecar, Resources: corev1.ResourceRequirements{Requests: resList("500m", "")}}}
			}),
			reasons: map[string]string{"a": ReasonInsufficientCPU},
		},

		// Node selector and node affinity.
		{
			name:    "nodeSelector",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, nodeLabels("disk", "hdd"))), alive(mkNode("b", 1000, 1024, nodeLabels("disk", "ssd"))), alive(mkNode("c", 1000, 1024))},
			pod:     mkPod("p", nodeSelector("disk", "ssd")),
			want:    "b",
			reasons: map[string]string{"a": ReasonNodeAffinity, "c": ReasonNodeAffinity},
		},
		{
			name:  "nodeSelector and required affinity both apply",
			nodes: []NodeInfo{alive(mkNode("a", 1000, 1024, nodeLabels("disk", "ssd", "zone", "x"))), alive(mkNode("b", 1000, 1024, nodeLabels("disk", "ssd", "zone", "y")))},
			pod:   mkPod("p", nodeSelector("disk", "ssd"), requiredNodeTerms(expr("zone", corev1.NodeSelectorOpIn, "y"))),
			want:  "b", reasons: map[string]string{"a": ReasonNodeAffinity},
		},
		{
			name: "required terms are ORed",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels("zone", "x"))),
				alive(mkNode("b", 1000, 1024, nodeLabels("zone", "y"))),
				alive(mkNode("c", 1000, 1024, nodeLabels("zone", "z"))),
			},
			pod:     mkPod("p", requiredNodeTerms(expr("zone", corev1.NodeSelectorOpIn, "x"), expr("zone", corev1.NodeSelectorOpIn, "z"))),
			want:    "a",
			reasons: map[string]string{"b": ReasonNodeAffinity},
		},
		{
			name:    "required affinity with no terms matches no node",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024))},
			pod:     mkPod("p", requiredNodeTerms()),
			reasons: map[string]string{"a": ReasonNodeAffinity},
		},

		// Taints and tolerations.
		{
			name:    "untolerated NoSchedule taint",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, taint("dedicated", "gpu", corev1.TaintEffectNoSchedule))), alive(mkNode("b", 1000, 1024))},
			pod:     mkPod("p"),
			want:    "b",
			reasons: map[string]string{"a": "node(s) had untolerated taint {dedicated: gpu}"},
		},
		{
			name:    "untolerated NoExecute taint",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, taint("k", "", corev1.TaintEffectNoExecute)))},
			pod:     mkPod("p"),
			reasons: map[string]string{"a": "node(s) had untolerated taint {k: }"},
		},
		{
			name:    "PreferNoSchedule does not filter",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, taint("k", "v", corev1.TaintEffectPreferNoSchedule)))},
			pod:     mkPod("p"),
			want:    "a",
			reasons: map[string]string{},
		},
		{
			name:    "the first untolerated taint is reported",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, taint("one", "1", corev1.TaintEffectNoSchedule), taint("two", "2", corev1.TaintEffectNoSchedule)))},
			pod:     mkPod("p", tolerate(corev1.Toleration{Key: "one", Value: "1"})),
			reasons: map[string]string{"a": "node(s) had untolerated taint {two: 2}"},
		},
		{
			name:    "tolerated taint",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024, taint("dedicated", "gpu", corev1.TaintEffectNoSchedule)))},
			pod:     mkPod("p", tolerate(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule})),
			want:    "a",
			reasons: map[string]string{},
		},

		// Host ports.
		{
			name:    "host port taken",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", port(80, 8080, "", ""))), alive(mkNode("b", 1000, 1024))},
			pod:     mkPod("p", port(80, 8080, corev1.ProtocolTCP, "")),
			want:    "b",
			reasons: map[string]string{"a": ReasonHostPorts},
		},
		{
			name: "host port taken on a shared host network by a containerPort",
			nodes: []NodeInfo{func() NodeInfo {
				n := alive(mkNode("a", 1000, 1024), mkPod("x", port(8080, 0, "", "")))
				n.SharedHostNetwork = true
				return n
			}()},
			pod:     mkPod("p", port(8080, 0, "", "")),
			reasons: map[string]string{"a": ReasonHostPorts},
		},
		{
			name:    "hostNetwork pod binds its containerPort",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", port(9000, 9000, "", "")))},
			pod:     mkPod("p", port(9000, 0, "", ""), func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
			reasons: map[string]string{"a": ReasonHostPorts},
		},

		// Pod anti-affinity.
		{
			name: "anti-affinity by hostname",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", podLabels("app", "web"))),
				alive(mkNode("b", 1000, 1024)),
			},
			pod:     mkPod("p", podLabels("app", "web"), requiredAntiAffinity(podTermFor("web", corev1.LabelHostname))),
			want:    "b",
			reasons: map[string]string{"a": ReasonPodAntiAffinity},
		},
		{
			name: "anti-affinity by zone closes the whole zone",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1")), mkPod("x", podLabels("app", "web"))),
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z1"))),
				alive(mkNode("c", 1000, 1024, nodeLabels(zoneKey, "z2"))),
			},
			pod:     mkPod("p", requiredAntiAffinity(podTermFor("web", zoneKey))),
			want:    "c",
			reasons: map[string]string{"a": ReasonPodAntiAffinity, "b": ReasonPodAntiAffinity},
		},
		{
			name: "anti-affinity ignores other namespaces by default",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", podLabels("app", "web"), inNS("other"))),
			},
			pod:     mkPod("p", requiredAntiAffinity(podTermFor("web", corev1.LabelHostname))),
			want:    "a",
			reasons: map[string]string{},
		},
		{
			name: "anti-affinity over listed namespaces",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", podLabels("app", "web"), inNS("other"))),
				alive(mkNode("b", 1000, 1024)),
			},
			pod: mkPod("p", requiredAntiAffinity(func() corev1.PodAffinityTerm {
				t := podTermFor("web", corev1.LabelHostname)
				t.Namespaces = []string{"other"}
				return t
			}())),
			want:    "b",
			reasons: map[string]string{"a": ReasonPodAntiAffinity},
		},
		{
			name: "anti-affinity over a namespaceSelector",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", podLabels("app", "web"), inNS("prod"))),
				alive(mkNode("b", 1000, 1024), mkPod("y", podLabels("app", "web"), inNS("dev"))),
			},
			nsl: map[string]map[string]string{"prod": {"env": "prod"}},
			pod: mkPod("p", requiredAntiAffinity(func() corev1.PodAffinityTerm {
				t := podTermFor("web", corev1.LabelHostname)
				t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
				return t
			}())),
			want:    "b",
			reasons: map[string]string{"a": ReasonPodAntiAffinity},
		},
		{
			name: "existing pod's anti-affinity keeps the pod away",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", requiredAntiAffinity(podTermFor("batch", corev1.LabelHostname)))),
				alive(mkNode("b", 1000, 1024)),
			},
			pod:     mkPod("p", podLabels("app", "batch")),
			want:    "b",
			reasons: map[string]string{"a": ReasonExistingPodsAntiAffinity},
		},

		{
			name: "anti-affinity matchLabelKeys narrows to the pod's own value",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("old", podLabels("app", "web", "pod-template-hash", "h1"))),
				alive(mkNode("b", 1000, 1024), mkPod("new", podLabels("app", "web", "pod-template-hash", "h2"))),
			},
			pod: mkPod("p", podLabels("app", "web", "pod-template-hash", "h2"), requiredAntiAffinity(func() corev1.PodAffinityTerm {
				t := podTermFor("web", corev1.LabelHostname)
				t.MatchLabelKeys = []string{"pod-template-hash"}
				return t
			}())),
			want:    "a",
			reasons: map[string]string{"b": ReasonPodAntiAffinity},
		},
		{
			name: "anti-affinity mismatchLabelKeys selects other values",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", podLabels("app", "web", "tenant", "t2"))),
				alive(mkNode("b", 1000, 1024), mkPod("y", podLabels("app", "web", "tenant", "t1"))),
			},
			pod: mkPod("p", podLabels("tenant", "t1"), requiredAntiAffinity(func() corev1.PodAffinityTerm {
				t := podTermFor("web", corev1.LabelHostname)
				t.MismatchLabelKeys = []string{"tenant"}
				return t
			}())),
			want:    "b",
			reasons: map[string]string{"a": ReasonPodAntiAffinity},
		},
		{
			name: "anti-affinity with a nil label selector selects nothing",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", podLabels("app", "web"))),
			},
			pod:     mkPod("p", requiredAntiAffinity(corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname})),
			want:    "a",
			reasons: map[string]string{},
		},
		// Pod affinity.
		{
			name: "affinity to a zone holding a matching pod",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1"))),
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z2"))),
				alive(mkNode("c", 1000, 1024, nodeLabels(zoneKey, "z2")), mkPod("db", podLabels("app", "db"))),
			},
			pod:     mkPod("p", requiredAffinity(podTermFor("db", zoneKey))),
			want:    "b",
			reasons: map[string]string{"a": ReasonPodAffinity},
		},
		{
			name: "affinity: node without the topology key",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("db", podLabels("app", "db"))),
			},
			pod:     mkPod("p", requiredAffinity(podTermFor("db", zoneKey))),
			reasons: map[string]string{"a": ReasonPodAffinity},
		},
		{
			name:    "affinity: no matching pod anywhere",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024))},
			pod:     mkPod("p", requiredAffinity(podTermFor("db", corev1.LabelHostname))),
			reasons: map[string]string{"a": ReasonPodAffinity},
		},
		{
			name:    "affinity: first pod of a group matching its own term",
			nodes:   []NodeInfo{alive(mkNode("a", 1000, 1024))},
			pod:     mkPod("p", podLabels("app", "cache"), requiredAffinity(podTermFor("cache", corev1.LabelHostname))),
			want:    "a",
			reasons: map[string]string{},
		},
		{
			name: "affinity: self match does not apply once a matching pod exists",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024)),
				alive(mkNode("b", 1000, 1024), mkPod("x", podLabels("app", "cache"))),
			},
			pod:     mkPod("p", podLabels("app", "cache"), requiredAffinity(podTermFor("cache", corev1.LabelHostname))),
			want:    "b",
			reasons: map[string]string{"a": ReasonPodAffinity},
		},
		{
			name: "affinity counts pods on nodes that cannot take pods",
			nodes: []NodeInfo{
				{Node: mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1")), Pods: []*corev1.Pod{mkPod("db", podLabels("app", "db"))}},
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z1"))),
				alive(mkNode("c", 1000, 1024, nodeLabels(zoneKey, "z2"))),
			},
			pod:     mkPod("p", requiredAffinity(podTermFor("db", zoneKey))),
			want:    "b",
			reasons: map[string]string{"a": ReasonNotReady, "c": ReasonPodAffinity},
		},

		// Topology spread constraints.
		{
			name: "DoNotSchedule skew",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1")), pods("w", 2, podLabels("app", "web"))...),
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z2")), mkPod("v", podLabels("app", "web"))),
				alive(mkNode("c", 1000, 1024)),
			},
			pod:  mkPod("p", podLabels("app", "web"), spreadConstraintOpt(1, zoneKey, corev1.DoNotSchedule, "web")),
			want: "b",
			reasons: map[string]string{
				"a": ReasonTopologySpread,
				"c": ReasonTopologySpreadMissingLabel,
			},
		},
		{
			name: "spread matchLabelKeys counts only the pod's revision",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1")), pods("old", 3, podLabels("app", "web", "rev", "1"))...),
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z2")), mkPod("new", podLabels("app", "web", "rev", "2"))),
			},
			pod: mkPod("p", podLabels("app", "web", "rev", "2"), spreadConstraintOpt(1, zoneKey, corev1.DoNotSchedule, "web"), func(p *corev1.Pod) {
				p.Spec.TopologySpreadConstraints[0].MatchLabelKeys = []string{"rev"}
			}),
			want:    "a",
			reasons: map[string]string{"b": ReasonTopologySpread},
		},
		{
			name: "spread honours node affinity when counting domains",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1", "disk", "ssd")), mkPod("w", podLabels("app", "web"))),
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z2"))),
			},
			pod:     mkPod("p", podLabels("app", "web"), nodeSelector("disk", "ssd"), spreadConstraintOpt(1, zoneKey, corev1.DoNotSchedule, "web")),
			want:    "a",
			reasons: map[string]string{"b": ReasonNodeAffinity},
		},
		{
			name: "minDomains counts missing domains as empty",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1")), mkPod("w", podLabels("app", "web"))),
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z2")), mkPod("v", podLabels("app", "web"))),
			},
			pod: mkPod("p", podLabels("app", "web"), spreadConstraintOpt(1, zoneKey, corev1.DoNotSchedule, "web"), func(p *corev1.Pod) {
				three := int32(3)
				p.Spec.TopologySpreadConstraints[0].MinDomains = &three
			}),
			reasons: map[string]string{"a": ReasonTopologySpread, "b": ReasonTopologySpread},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Place(Snapshot{Nodes: tt.nodes, NamespaceLabels: tt.nsl}, tt.pod, PolicySpread)
			if d.Node != tt.want {
				t.Errorf("node = %q, want %q (reasons %v)", d.Node, tt.want, d.Reasons)
			}
			if !maps.Equal(d.Reasons, tt.reasons) {
				t.Errorf("reasons = %v, want %v", d.Reasons, tt.reasons)
			}
			if len(d.Score) != len(tt.nodes)-len(tt.reasons) {
				t.Errorf("scored %d nodes, want %d: %v", len(d.Score), len(tt.nodes)-len(tt.reasons), d.Score)
			}
		})
	}
}

func TestNodeTermOperators(t *testing.T) {
	node := mkNode("n1", 1000, 1024, nodeLabels("zone", "a", "gen", "5"))
	req := func(key string, op corev1.NodeSelectorOperator, vals ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: vals}
	}
	tests := []struct {
		name   string
		exprs  []corev1.NodeSelectorRequirement
		fields []corev1.NodeSelectorRequirement
		want   bool
	}{
		{"In", []corev1.NodeSelectorRequirement{req("zone", "In", "a", "b")}, nil, true},
		{"In, other values", []corev1.NodeSelectorRequirement{req("zone", "In", "b")}, nil, false},
		{"NotIn", []corev1.NodeSelectorRequirement{req("zone", "NotIn", "b")}, nil, true},
		{"NotIn, listed", []corev1.NodeSelectorRequirement{req("zone", "NotIn", "a")}, nil, false},
		{"NotIn, label absent", []corev1.NodeSelectorRequirement{req("rack", "NotIn", "a")}, nil, true},
		{"Exists", []corev1.NodeSelectorRequirement{req("gen", "Exists")}, nil, true},
		{"Exists, absent", []corev1.NodeSelectorRequirement{req("gpu", "Exists")}, nil, false},
		{"DoesNotExist", []corev1.NodeSelectorRequirement{req("gpu", "DoesNotExist")}, nil, true},
		{"DoesNotExist, present", []corev1.NodeSelectorRequirement{req("zone", "DoesNotExist")}, nil, false},
		{"Gt", []corev1.NodeSelectorRequirement{req("gen", "Gt", "4")}, nil, true},
		{"Gt, equal", []corev1.NodeSelectorRequirement{req("gen", "Gt", "5")}, nil, false},
		{"Lt", []corev1.NodeSelectorRequirement{req("gen", "Lt", "6")}, nil, true},
		{"Lt, not a number on the node", []corev1.NodeSelectorRequirement{req("zone", "Lt", "6")}, nil, false},
		{"Gt with a non-integer value is malformed", []corev1.NodeSelectorRequirement{req("gen", "Gt", "x")}, nil, false},
		{"In with no values is malformed", []corev1.NodeSelectorRequirement{req("zone", "In")}, nil, false},
		{"unknown operator", []corev1.NodeSelectorRequirement{req("zone", "Like", "a")}, nil, false},
		{"expressions are ANDed", []corev1.NodeSelectorRequirement{req("zone", "In", "a"), req("gen", "In", "4")}, nil, false},
		{"expressions all hold", []corev1.NodeSelectorRequirement{req("zone", "In", "a"), req("gen", "In", "5")}, nil, true},
		{"matchFields metadata.name In", nil, []corev1.NodeSelectorRequirement{req("metadata.name", "In", "n1")}, true},
		{"matchFields metadata.name NotIn", nil, []corev1.NodeSelectorRequirement{req("metadata.name", "NotIn", "n1")}, false},
		{"matchFields other field", nil, []corev1.NodeSelectorRequirement{req("metadata.uid", "In", "n1")}, false},
		{"fields ANDed with expressions", []corev1.NodeSelectorRequirement{req("zone", "In", "a")}, []corev1.NodeSelectorRequirement{req("metadata.name", "In", "n2")}, false},
		{"empty term matches nothing", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term := corev1.NodeSelectorTerm{MatchExpressions: tt.exprs, MatchFields: tt.fields}
			if got := compileNodeTerm(term).matches(node); got != tt.want {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
			// The same through Place, as a required term.
			d := Place(Snapshot{Nodes: []NodeInfo{alive(node)}}, mkPod("p", requiredNodeTerms(term)), PolicySpread)
			if (d.Node == "n1") != tt.want {
				t.Errorf("Place = %q %v, want placed %v", d.Node, d.Reasons, tt.want)
			}
		})
	}
}

func TestTolerates(t *testing.T) {
	taintKV := corev1.Taint{Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name string
		tol  corev1.Toleration
		want bool
	}{
		{"Equal, same key value effect", corev1.Toleration{Key: "k", Operator: "Equal", Value: "v", Effect: "NoSchedule"}, true},
		{"no operator means Equal", corev1.Toleration{Key: "k", Value: "v"}, true},
		{"Equal, other value", corev1.Toleration{Key: "k", Value: "w"}, false},
		{"Equal, other key", corev1.Toleration{Key: "j", Value: "v"}, false},
		{"Exists ignores the value", corev1.Toleration{Key: "k", Operator: "Exists"}, true},
		{"Exists, other key", corev1.Toleration{Key: "j", Operator: "Exists"}, false},
		{"empty key with Exists tolerates everything", corev1.Toleration{Operator: "Exists"}, true},
		{"empty key with Equal tolerates nothing", corev1.Toleration{Value: "v"}, false},
		{"empty effect matches all effects", corev1.Toleration{Key: "k", Operator: "Exists", Effect: ""}, true},
		{"other effect", corev1.Toleration{Key: "k", Operator: "Exists", Effect: "NoExecute"}, false},
		{"unknown operator", corev1.Toleration{Key: "k", Operator: "Gt", Value: "v"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tolerates([]corev1.Toleration{tt.tol}, taintKV); got != tt.want {
				t.Errorf("tolerates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHostPortConflicts(t *testing.T) {
	tests := []struct {
		name     string
		existing podOpt
		incoming podOpt
		conflict bool
	}{
		{"same port, default TCP", port(80, 80, "", ""), port(80, 80, corev1.ProtocolTCP, ""), true},
		{"same port, other protocol", port(53, 53, corev1.ProtocolUDP, ""), port(53, 53, corev1.ProtocolTCP, ""), false},
		{"other port", port(80, 80, "", ""), port(80, 81, "", ""), false},
		{"same port, different addresses", port(80, 80, "", "10.0.0.1"), port(80, 80, "", "10.0.0.2"), false},
		{"same port, same address", port(80, 80, "", "10.0.0.1"), port(80, 80, "", "10.0.0.1"), true},
		{"every address against one", port(80, 80, "", "0.0.0.0"), port(80, 80, "", "10.0.0.1"), true},
		{"one address against every address", port(80, 80, "", "10.0.0.1"), port(80, 80, "", ""), true},
		{"containerPorts alone bind nothing", port(80, 0, "", ""), port(80, 0, "", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := alive(mkNode("a", 1000, 1024), mkPod("x", tt.existing))
			ok, why := Fits(n, mkPod("p", tt.incoming))
			if ok == tt.conflict {
				t.Errorf("Fits = %v %q, want conflict %v", ok, why, tt.conflict)
			}
			if tt.conflict && why != ReasonHostPorts {
				t.Errorf("reason = %q, want %q", why, ReasonHostPorts)
			}
		})
	}
}
