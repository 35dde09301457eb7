package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// TestSchedulingRules covers workload acceptance 4: each rule gives the
// expected placement, or a Pending pod whose describe says why.
func TestSchedulingRules(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 3, harness.Options{ExtraArgs: []string{"--runtime", "sim", "--cpu", "2", "--memory", "4Gi"}})
	// n1 is in zone a, the others in zone b.
	c.Agents[0].AddArgs("--labels", "zone=a,disk=ssd")
	c.Agents[1].AddArgs("--labels", "zone=b")
	c.Agents[2].AddArgs("--labels", "zone=b")
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 0)
	a := c.Agents[0]
	waitfor.Cond(t, 30*time.Second, "3 Ready nodes", func() (bool, string) {
		r := c.CLI(a, nil, "get", "nodes")
		return strings.Count(r.Stdout, " Ready ") == 3, r.Stdout
	})

	// Taint n3 through a read-modify-write of its Node, as a user would.
	r := c.CLI(a, nil, "get", "node", "n3", "-o", "json")
	var node corev1.Node
	if err := json.Unmarshal([]byte(r.Stdout), &node); err != nil {
		t.Fatal(err)
	}
	node.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	b, _ := json.Marshal(node)
	c.MustCLI(a, "apply", "-f", writeManifest(t, "n3.json", string(b)))

	pod := func(name, specExtra string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: %s}
spec:
  containers:
    - name: app
      image: shoal-testapp
      command: ["shoal-testapp", "sleep"]
      resources:
        requests: {cpu: 100m, memory: 64Mi}
%s`, name, name, specExtra)
	}
	anti := func(i int) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: spread-%d
  labels: {app: spread}
spec:
  tolerations: [{key: dedicated, operator: Exists}]
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector: {matchLabels: {app: spread}}
  containers:
    - name: app
      image: shoal-testapp
      command: ["shoal-testapp", "sleep"]
`, i)
	}
	docs := []string{
		pod("by-selector", "  nodeSelector: {disk: ssd}\n"),
		pod("by-affinity", `  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions: [{key: zone, operator: In, values: [b]}]
`),
		pod("tainted-only", "  nodeSelector: {kubernetes.io/hostname: n3}\n"),
		pod("tolerates", "  nodeSelector: {kubernetes.io/hostname: n3}\n  tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]\n"),
		strings.Replace(pod("too-big", ""), "cpu: 100m", "cpu: \"64\"", 1),
		anti(1), anti(2), anti(3), anti(4),
	}
	c.MustCLI(a, "apply", "-f", writeManifest(t, "sched.yaml", strings.Join(docs, "---\n")))

	placed := func(name string) (corev1.Pod, bool) {
		p, err := getPod(t, c, a, name)
		return p, err == nil && p.Spec.NodeName != ""
	}
	expectNode := func(name string, ok func(string) bool, want string) {
		t.Helper()
		waitfor.Cond(t, 30*time.Second, name+" placed on "+want, func() (bool, string) {
			p, done := placed(name)
			return done && ok(p.Spec.NodeName), p.Spec.NodeName
		})
	}
	expectNode("by-selector", func(n string) bool { return n == "n1" }, "n1 (disk=ssd)")
	expectNode("by-affinity", func(n string) bool { return n == "n2" || n == "n3" }, "n2 or n3 (zone b)")
	expectNode("tolerates", func(n string) bool { return n == "n3" }, "n3 (tolerated taint)")

	expectPending := func(name string, why ...string) {
		t.Helper()
		waitfor.Cond(t, 30*time.Second, name+" Pending with a reason", func() (bool, string) {
			r := c.CLI(a, nil, "describe", "pod", name)
			for _, w := range why {
				if !strings.Contains(r.Stdout, w) {
					return false, r.Stdout
				}
			}
			p, done := placed(name)
			return !done && p.Status.Phase == corev1.PodPending, r.Stdout
		})
	}
	expectPending("tainted-only", "Unschedulable", "untolerated taint")
	expectPending("too-big", "Unschedulable", "Insufficient cpu")

	// Anti-affinity: one per node, the fourth waits.
	waitfor.Cond(t, 30*time.Second, "three spread pods on three nodes", func() (bool, string) {
		nodes := map[string]bool{}
		for i := 1; i <= 4; i++ {
			if p, ok := placed(fmt.Sprintf("spread-%d", i)); ok {
				nodes[p.Spec.NodeName] = true
			}
		}
		return len(nodes) == 3, fmt.Sprint(nodes)
	})
	pendingOne := 0
	for i := 1; i <= 4; i++ {
		if _, ok := placed(fmt.Sprintf("spread-%d", i)); !ok {
			pendingOne++
			expectPending(fmt.Sprintf("spread-%d", i), "anti-affinity")
		}
	}
	if pendingOne != 1 {
		t.Fatalf("%d spread pods pending, want 1", pendingOne)
	}
}

// TestConcurrentClaimersNeverOvercommit covers workload acceptance 5: 200
// pods created at once on 3 agents are placed exactly once, within capacity.
func TestConcurrentClaimersNeverOvercommit(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 3, harness.Options{ExtraArgs: []string{"--runtime", "sim", "--cpu", "1", "--memory", "8Gi"}})
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 0)
	a := c.Agents[0]
	var docs []string
	for i := 0; i < 200; i++ {
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: burst-%03d
spec:
  containers:
    - name: app
      image: shoal-testapp
      command: ["shoal-testapp", "sleep"]
      resources:
        requests: {cpu: 14m, memory: 16Mi}
`, i))
	}
	// 200 x 14m = 2.8 cores over 3 nodes of 1 core: it fits only if no node
	// takes more than its share.
	c.MustCLI(a, "apply", "-f", writeManifest(t, "burst.yaml", strings.Join(docs, "---\n")))
	var l podList
	waitfor.Cond(t, 90*time.Second, "200 pods placed", func() (bool, string) {
		var err error
		l, err = getPods(c, c.Agents[1])
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, p := range l.Items {
			if p.Spec.NodeName != "" {
				n++
			}
		}
		return n == 200, fmt.Sprintf("%d of %d placed", n, len(l.Items))
	})
	cpu := map[string]int64{}
	names := map[string]bool{}
	for _, p := range l.Items {
		if names[p.Name] {
			t.Fatalf("pod %s listed twice", p.Name)
		}
		names[p.Name] = true
		q := p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]
		cpu[p.Spec.NodeName] += q.MilliValue()
	}
	capacity := resource.MustParse("1")
	for node, used := range cpu {
		if used > capacity.MilliValue() {
			t.Fatalf("node %s holds %dm of cpu requests, over its %dm: %v", node, used, capacity.MilliValue(), cpu)
		}
	}
	t.Logf("placement: %v", cpu)
}
