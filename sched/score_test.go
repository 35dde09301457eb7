package sched

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPlaceScores(t *testing.T) {
	tests := []struct {
		name   string
		nodes  []NodeInfo
		pod    *corev1.Pod
		policy Policy
		want   string
		score  map[string]int64 // checked when set
	}{
		{
			name:   "spread: least allocated",
			nodes:  []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", requests("600m", "600Mi"))), alive(mkNode("b", 1000, 1024), mkPod("y", requests("200m", "200Mi")))},
			pod:    mkPod("p", requests("100m", "100Mi")),
			policy: PolicySpread,
			want:   "b",
		},
		{
			name:   "binpack: most allocated",
			nodes:  []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", requests("600m", "600Mi"))), alive(mkNode("b", 1000, 1024), mkPod("y", requests("200m", "200Mi")))},
			pod:    mkPod("p", requests("100m", "100Mi")),
			policy: PolicyBinpack,
			want:   "a",
		},
		{
			name:   "spread counts best-effort pods at the scoring default",
			nodes:  []NodeInfo{alive(mkNode("a", 4000, 4096), pods("x", 5)...), alive(mkNode("b", 4000, 4096))},
			pod:    mkPod("p"),
			policy: PolicySpread,
			want:   "b",
		},
		{
			name: "score components on an empty node",
			// least allocated 50 (cpu 50, memory 50) + no PreferNoSchedule taint 100
			nodes:  []NodeInfo{alive(mkNode("a", 1000, 1024))},
			pod:    mkPod("p", requests("500m", "512Mi")),
			policy: PolicySpread,
			want:   "a",
			score:  map[string]int64{"a": 150},
		},
		{
			name:   "binpack score on a half-full node",
			nodes:  []NodeInfo{alive(mkNode("a", 1000, 1024), mkPod("x", requests("250m", "256Mi")))},
			pod:    mkPod("p", requests("250m", "256Mi")),
			policy: PolicyBinpack,
			want:   "a",
			score:  map[string]int64{"a": 150},
		},
		{
			name: "preferred node affinity: heavier term wins",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels("disk", "ssd"))),
				alive(mkNode("b", 1000, 1024, nodeLabels("zone", "z9"))),
				alive(mkNode("c", 1000, 1024)),
			},
			pod:    mkPod("p", preferredNode(10, expr("disk", corev1.NodeSelectorOpIn, "ssd")), preferredNode(40, expr("zone", corev1.NodeSelectorOpExists))),
			policy: PolicySpread,
			want:   "b",
			// node affinity 10/40 -> 25, 40/40 -> 100, 0; least allocated 100 (best-effort defaults are 10% cpu, 19.5% memory -> 90, 80, avg 85)
			score: map[string]int64{"a": 25 + 85 + 100, "b": 100 + 85 + 100, "c": 85 + 100},
		},
		{
			name: "preferred pod affinity by zone",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1"))),
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z2"))),
				alive(mkNode("c", 1000, 1024, nodeLabels(zoneKey, "z2")), mkPod("db", podLabels("app", "db"), requests("1", "1Gi"))),
			},
			pod:    mkPod("p", preferredAffinity(50, podTermFor("db", zoneKey))),
			policy: PolicySpread,
			want:   "b",
		},
		{
			name: "preferred pod anti-affinity",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", podLabels("app", "web"))),
				alive(mkNode("b", 1000, 1024), mkPod("y", podLabels("app", "db"), requests("300m", "300Mi"))),
			},
			pod:    mkPod("p", preferredAntiAffinity(100, podTermFor("web", corev1.LabelHostname))),
			policy: PolicySpread,
			want:   "b",
		},
		{
			name: "existing pod's preferred anti-affinity repels the pod",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", requests("600m", "600Mi"), preferredAntiAffinity(100, podTermFor("noisy", corev1.LabelHostname)))),
				alive(mkNode("b", 1000, 1024), mkPod("y")),
			},
			pod:    mkPod("p", podLabels("app", "noisy")),
			policy: PolicyBinpack,
			want:   "b",
		},
		{
			name: "existing pod's preferred affinity attracts the pod",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024), mkPod("x", requests("600m", "600Mi"), preferredAffinity(100, podTermFor("cache", corev1.LabelHostname)))),
				alive(mkNode("b", 1000, 1024), mkPod("y")),
			},
			pod:    mkPod("p", podLabels("app", "cache")),
			policy: PolicySpread,
			want:   "a",
		},
		{
			name: "untolerated PreferNoSchedule taint is avoided",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, taint("spot", "true", corev1.TaintEffectPreferNoSchedule))),
				alive(mkNode("b", 1000, 1024)),
			},
			pod:    mkPod("p"),
			policy: PolicySpread,
			want:   "b",
		},
		{
			name: "tolerated PreferNoSchedule taint is not",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, taint("spot", "true", corev1.TaintEffectPreferNoSchedule))),
				alive(mkNode("b", 1000, 1024)),
			},
			pod:    mkPod("p", tolerate(corev1.Toleration{Key: "spot", Operator: corev1.TolerationOpExists})),
			policy: PolicySpread,
			want:   "a",
		},
		{
			name: "ScheduleAnyway spread favours the emptier zone",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000, 1024, nodeLabels(zoneKey, "z1")), mkPod("w", podLabels("app", "web"))),
				alive(mkNode("b", 1000, 1024, nodeLabels(zoneKey, "z1"))),
				alive(mkNode("c", 1000, 1024, nodeLabels(zoneKey, "z2")), mkPod("v", requests("500m", "500Mi"))),
			},
			pod:    mkPod("p", podLabels("app", "web"), spreadConstraintOpt(1, zoneKey, corev1.ScheduleAnyway, "web")),
			policy: PolicySpread,
			want:   "c",
		},
		{
			name: "replicas of one owner spread",
			nodes: []NodeInfo{
				alive(mkNode("a", 8000, 8192), mkPod("r1", ownedBy("rs1"))),
				alive(mkNode("b", 8000, 8192), mkPod("o1", ownedBy("other")), mkPod("o2", ownedBy("other"))),
			},
			pod:    mkPod("p", ownedBy("rs1")),
			policy: PolicySpread,
			want:   "b",
		},
		{
			name: "binpack ignores the owner spread",
			nodes: []NodeInfo{
				alive(mkNode("a", 8000, 8192)),
				alive(mkNode("b", 8000, 8192), mkPod("r1", ownedBy("rs1"), requests("1", "1Gi"))),
			},
			pod:    mkPod("p", ownedBy("rs1")),
			policy: PolicyBinpack,
			want:   "b",
		},
		{
			name:   "equal nodes: the smallest name",
			nodes:  []NodeInfo{alive(mkNode("c", 1000, 1024)), alive(mkNode("a", 1000, 1024)), alive(mkNode("b", 1000, 1024))},
			pod:    mkPod("p"),
			policy: PolicySpread,
			want:   "a",
		},
		{
			name: "equal rounded scores: the finer fit decides before the name",
			nodes: []NodeInfo{
				alive(mkNode("a", 1000000, 1<<20)),
				alive(mkNode("b", 1000000, 1<<20), mkPod("x", requests("1m", "1Mi"))),
			},
			pod:    mkPod("p", requests("1m", "1Mi")),
			policy: PolicyBinpack,
			want:   "b",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Place(Snapshot{Nodes: tt.nodes}, tt.pod, tt.policy)
			if d.Node != tt.want {
				t.Errorf("node = %q, want %q (scores %v, reasons %v)", d.Node, tt.want, d.Score, d.Reasons)
			}
			if tt.score != nil && !maps.Equal(d.Score, tt.score) {
				t.Errorf("scores = %v, want %v", d.Score, tt.score)
			}
			// The same decision whatever the order of the nodes.
			rev := slices.Clone(tt.nodes)
			slices.Reverse(rev)
			if d2 := Place(Snapshot{Nodes: rev}, tt.pod, tt.policy); d2.Node != d.Node || !maps.Equal(d2.Score, d.Score) {
				t.Errorf("reversed nodes: %q %v, want %q %v", d2.Node, d2.Score, d.Node, d.Score)
			}
		})
	}
}

// TestReplicas places 6 replicas of one ReplicaSet one by one, adding each
// placed pod to the snapshot as the bind would.
func TestReplicas(t *testing.T) {
	tests := []struct {
		name     string
		cpuMilli int64  // per node
		cpu, mem string // requests of each replica; "" = unset
		policy   Policy
		want     map[string]int
	}{
		{"spread, ample room", 8000, "100m", "256Mi", PolicySpread, map[string]int{"n1": 2, "n2": 2, "n3": 2}},
		{"spread, best effort", 8000, "", "", PolicySpread, map[string]int{"n1": 2, "n2": 2, "n3": 2}},
		// Zero requests leave every resource score equal: only the owner spread tells nodes apart.
		{"spread, zero requests", 8000, "0", "0", PolicySpread, map[string]int{"n1": 2, "n2": 2, "n3": 2}},
		{"binpack, ample room", 8000, "100m", "256Mi", PolicyBinpack, map[string]int{"n1": 6}},
		{"binpack, zero requests", 8000, "0", "0", PolicyBinpack, map[string]int{"n1": 6}},
		{"binpack until full", 4000, "1", "256Mi", PolicyBinpack, map[string]int{"n1": 4, "n2": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Snapshot{}
			for i := 1; i <= 3; i++ {
				s.Nodes = append(s.Nodes, alive(mkNode(fmt.Sprintf("n%d", i), tt.cpuMilli, 16384)))
			}
			got := map[string]int{}
			for i := range 6 {
				p := mkPod(fmt.Sprintf("web-%d", i), ownedBy("rs-web"), podLabels("app", "web"), requests(tt.cpu, tt.mem))
				d := Place(s, p, tt.policy)
				if d.Node == "" {
					t.Fatalf("replica %d not placed: %s", i, d.Message(len(s.Nodes)))
				}
				got[d.Node]++
				bind(&s, d.Node, p)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("replicas per node = %v, want %v", got, tt.want)
			}
		})
	}
}

// bind adds p to node name in s, as a committed bind would.
func bind(s *Snapshot, name string, p *corev1.Pod) {
	for i := range s.Nodes {
		if s.Nodes[i].Node.Name == name {
			p.Spec.NodeName = name
			s.Nodes[i].Pods = append(s.Nodes[i].Pods, p)
			return
		}
	}
	panic("no node " + name)
}

func TestMessage(t *testing.T) {
	tests := []struct {
		name  string
		d     Decision
		total int
		want  string
	}{
		{
			name: "kubectl example",
			d: Decision{Reasons: map[string]string{
				"a": ReasonNodeAffinity, "b": ReasonInsufficientCPU, "c": ReasonInsufficientCPU,
			}},
			total: 3,
			want:  "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.",
		},
		{
			name:  "one reason",
			d:     Decision{Reasons: map[string]string{"a": ReasonNotReady}},
			total: 1,
			want:  "0/1 nodes are available: 1 node(s) were not ready.",
		},
		{
			name: "taints are counted per taint",
			d: Decision{Reasons: map[string]string{
				"a": "node(s) had untolerated taint {k: v}", "b": "node(s) had untolerated taint {k: v}",
				"c": "node(s) had untolerated taint {j: }", "d": ReasonUnschedulable,
			}},
			total: 4,
			want:  "0/4 nodes are available: 1 node(s) had untolerated taint {j: }, 1 node(s) were unschedulable, 2 node(s) had untolerated taint {k: v}.",
		},
		{
			name:  "no nodes",
			d:     Decision{Reasons: map[string]string{}},
			total: 0,
			want:  "0/0 nodes are available.",
		},
		{
			name:  "placed",
			d:     Decision{Node: "a", Reasons: map[string]string{"b": ReasonNotReady}},
			total: 2,
			want:  "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Message(tt.total); got != tt.want {
				t.Errorf("Message = %q\nwant      %q", got, tt.want)
			}
		})
	}
}

func TestMessageFromPlace(t *testing.T) {
	s := Snapshot{Nodes: []NodeInfo{
		alive(mkNode("a", 1000, 1024, nodeLabels("disk", "hdd"))),
		alive(mkNode("b", 100, 1024, nodeLabels("disk", "ssd"))),
		alive(mkNode("c", 100, 1024, nodeLabels("disk", "ssd"))),
	}}
	d := Place(s, mkPod("p", requests("500m", ""), nodeSelector("disk", "ssd")), PolicySpread)
	want := "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu."
	if got := d.Message(len(s.Nodes)); got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, p := range []Policy{PolicySpread, PolicyBinpack} {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if p, err := ParsePolicy(""); err != nil || p != PolicySpread {
		t.Errorf(`ParsePolicy("") = %v, %v; want spread`, p, err)
	}
	if _, err := ParsePolicy("random"); err == nil {
		t.Error(`ParsePolicy("random"): no error`)
	}
}
