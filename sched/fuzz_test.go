package sched

import (
	"fmt"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

// FuzzPlaceNeverOvercommits builds random nodes and a random sequence of
// pods from the fuzz input, places the pods one by one (adding each placed pod
// to the snapshot, as a committed bind would) and checks after every step
// that no node's cpu or memory requests exceed its allocatable, no two pods
// on a node bind the same host port, pod counts and anti-affinity hold, Fits
// agrees with Place, and Place changed nothing it was given. The seed corpus
// runs with go test; go test -fuzz=FuzzPlaceNeverOvercommits explores more.
func FuzzPlaceNeverOvercommits(f *testing.F) {
	for i := range 40 {
		f.Add(uint64(i), uint8(i%7), uint8(10+i))
	}
	f.Fuzz(func(t *testing.T, seed uint64, nNodes, nPods uint8) {
		r := rand.New(rand.NewPCG(seed, uint64(nNodes)<<8|uint64(nPods)))
		s := Snapshot{}
		for i := range int(nNodes%8) + 1 {
			s.Nodes = append(s.Nodes, randomNode(r, i))
		}
		for i := range int(nPods%64) + 1 {
			pod := randomPod(r, i)
			policy := Policy(r.IntN(2))
			before := copySnapshot(s)
			d := Place(s, pod, policy)
			if !equality.Semantic.DeepEqual(before, s) {
				t.Fatalf("pod %d: Place modified the snapshot", i)
			}
			if d2 := Place(s, pod, policy); d2.Node != d.Node {
				t.Fatalf("pod %d: placed on %q, then on %q", i, d.Node, d2.Node)
			}
			checkDecision(t, s, pod, d)
			if d.Node == "" {
				continue
			}
			bind(&s, d.Node, pod)
			checkNodes(t, s, fmt.Sprintf("after pod %d on %s", i, d.Node))
		}
	})
}

// checkDecision holds Place to Fits and to its own bookkeeping.
func checkDecision(t *testing.T, s Snapshot, pod *corev1.Pod, d Decision) {
	t.Helper()
	for _, n := range s.Nodes {
		name := n.Node.Name
		reason, filtered := d.Reasons[name]
		_, scored := d.Score[name]
		if filtered == scored {
			t.Fatalf("pod %s, node %s: filtered %v (%q) and scored %v", pod.Name, name, filtered, reason, scored)
		}
		ok, why := Fits(n, pod)
		switch {
		case name == d.Node && !ok:
			t.Fatalf("pod %s placed on %s, where Fits says %q", pod.Name, name, why)
		case !ok && !filtered:
			t.Fatalf("pod %s: node %s passed every filter, but Fits says %q", pod.Name, name, why)
		case filtered && isFitReason(reason) && (ok || why != reason):
			t.Fatalf("pod %s: node %s filtered for %q, but Fits says %v %q", pod.Name, name, reason, ok, why)
		}
		if scored && d.Score[name] > d.Score[d.Node] {
			t.Fatalf("pod %s: chose %s (%d) over %s (%d)", pod.Name, d.Node, d.Score[d.Node], name, d.Score[name])
		}
	}
	if (d.Node == "") != (len(d.Score) == 0) {
		t.Fatalf("pod %s: node %q with scores %v", pod.Name, d.Node, d.Score)
	}
}

func isFitReason(r string) bool {
	switch r {
	case ReasonHostPorts, ReasonTooManyPods, ReasonInsufficientCPU, ReasonInsufficientMemory:
		return true
	}
	return false
}

// checkNodes recomputes, independently of the package, what every node
// holds, and checks nothing is overcommitted or in conflict.
func checkNodes(t *testing.T, s Snapshot, when string) {
	t.Helper()
	for _, n := range s.Nodes {
		if len(n.Pods) == 0 {
			continue
		}
		if !n.Alive || n.Node.Spec.Unschedulable || !ready(n.Node) {
			t.Fatalf("%s: node %s holds pods but is not placeable", when, n.Node.Name)
		}
		var cpu, mem int64
		type bound struct {
			port  int32
			proto corev1.Protocol
			ip    string
			pod   string
		}
		var ports []bound
		for _, p := range n.Pods {
			for _, c := range p.Spec.Containers {
				cpu += requestOrLimit(c, corev1.ResourceCPU).MilliValue()
				mem += requestOrLimit(c, corev1.ResourceMemory).Value()
				for _, cp := range c.Ports {
					hp := cp.HostPort
					if hp == 0 && (n.SharedHostNetwork || p.Spec.HostNetwork) {
						hp = cp.ContainerPort
					}
					if hp == 0 {
						continue
					}
					proto := cp.Protocol
					if proto == "" {
						proto = corev1.ProtocolTCP
					}
					for _, b := range ports {
						// Within one pod a clash is a validation error, not placement's.
						if b.pod != p.Name && b.port == hp && b.proto == proto && (b.ip == cp.HostIP || b.ip == "" || cp.HostIP == "") {
							t.Fatalf("%s: node %s: pods %s and %s both bind %s %d", when, n.Node.Name, b.pod, p.Name, proto, hp)
						}
					}
					ports = append(ports, bound{hp, proto, cp.HostIP, p.Name})
				}
			}
			if p.Spec.Affinity != nil && p.Spec.Affinity.PodAntiAffinity != nil {
				app := p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels["app"]
				for _, q := range n.Pods {
					if q != p && q.Labels["app"] == app {
						t.Fatalf("%s: node %s: %s runs beside %s (app=%s) despite anti-affinity", when, n.Node.Name, q.Name, p.Name, app)
					}
				}
			}
		}
		alloc := n.Node.Status.Allocatable
		if cpu > alloc.Cpu().MilliValue() || mem > alloc.Memory().Value() {
			t.Fatalf("%s: node %s overcommitted: %dm/%dm cpu, %d/%d memory", when, n.Node.Name, cpu, alloc.Cpu().MilliValue(), mem, alloc.Memory().Value())
		}
		if max, ok := alloc[corev1.ResourcePods]; ok && int64(len(n.Pods)) > max.Value() {
			t.Fatalf("%s: node %s holds %d pods, allows %d", when, n.Node.Name, len(n.Pods), max.Value())
		}
	}
}

func requestOrLimit(c corev1.Container, name corev1.ResourceName) *resource.Quantity {
	if q, ok := c.Resources.Requests[name]; ok {
		return &q
	}
	if q, ok := c.Resources.Limits[name]; ok {
		return &q
	}
	return resource.NewQuantity(0, resource.DecimalSI)
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func randomNode(r *rand.Rand, i int) NodeInfo {
	n := mkNode(fmt.Sprintf("n%d", i), pick[int64](r, 500, 1000, 2000, 4000), pick[int64](r, 512, 1024, 4096),
		nodeLabels(zoneKey, pick(r, "z1", "z2", "z3"), "disk", pick(r, "ssd", "hdd")))
	switch r.IntN(4) {
	case 0:
		maxPods(pick[int64](r, 1, 2, 5))(n)
	case 1:
		delete(n.Status.Allocatable, corev1.ResourcePods)
	}
	if r.IntN(6) == 0 {
		taint("dedicated", "db", pick(r, corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute, corev1.TaintEffectPreferNoSchedule))(n)
	}
	if r.IntN(8) == 0 {
		cordoned(n)
	}
	if r.IntN(8) == 0 {
		notReady(n)
	}
	return NodeInfo{Node: n, Alive: r.IntN(8) != 0, SharedHostNetwork: r.IntN(4) == 0}
}

func randomPod(r *rand.Rand, i int) *corev1.Pod {
	quantity := func(xs ...string) string { return pick(r, xs...) }
	containers := r.IntN(2) + 1
	p := mkPod(fmt.Sprintf("p%d", i), podLabels("app", pick(r, "a", "b", "c")))
	p.Spec.Containers = nil
	for c := range containers {
		ct := corev1.Container{Name: fmt.Sprintf("c%d", c)}
		cpu, mem := quantity("", "0", "50m", "100m", "250m", "500m", "1"), quantity("", "0", "64Mi", "128Mi", "512Mi", "1Gi")
		if r.IntN(3) == 0 {
			ct.Resources.Limits = resList(cpu, mem)
		} else {
			ct.Resources.Requests = resList(cpu, mem)
		}
		if r.IntN(3) == 0 {
			ct.Ports = append(ct.Ports, corev1.ContainerPort{
				ContainerPort: pick[int32](r, 80, 8080),
				HostPort:      pick[int32](r, 0, 80, 443, 8080),
				Protocol:      pick(r, corev1.Protocol(""), corev1.ProtocolTCP, corev1.ProtocolUDP),
				HostIP:        pick(r, "", "10.0.0.1", "10.0.0.2"),
			})
		}
		p.Spec.Containers = append(p.Spec.Containers, ct)
	}
	p.Spec.HostNetwork = r.IntN(10) == 0
	if r.IntN(3) == 0 {
		ownedBy(pick(r, "rs1", "rs2"))(p)
	}
	if r.IntN(5) == 0 {
		nodeSelector("disk", "ssd")(p)
	}
	if r.IntN(4) == 0 {
		tolerate(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists})(p)
	}
	if r.IntN(6) == 0 {
		requiredAntiAffinity(podTermFor(pick(r, "a", "b", "c"), corev1.LabelHostname))(p)
	}
	return p
}

func copySnapshot(s Snapshot) Snapshot {
	c := Snapshot{Nodes: make([]NodeInfo, len(s.Nodes))}
	for i, n := range s.Nodes {
		c.Nodes[i] = NodeInfo{Node: n.Node.DeepCopy(), Alive: n.Alive, SharedHostNetwork: n.SharedHostNetwork}
		for _, p := range n.Pods {
			c.Nodes[i].Pods = append(c.Nodes[i].Pods, p.DeepCopy())
		}
	}
	return c
}
