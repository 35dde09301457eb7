package nodelifecycle

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/controllertest"
)

var (
	now     = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	earlier = metav1.NewTime(now.Add(-time.Hour))
	nowT    = metav1.NewTime(now)
	// marked is when this controller marked a pod not Ready: after its node
	// died, before now.
	marked = metav1.NewTime(now.Add(-5 * time.Second))
)

const (
	timeout     = 10 * time.Second
	unreachable = "node n1 is unreachable"
)

func ptr[T any](v T) *T { return &v }

type nodeOpt func(*corev1.Node)

func newNode(opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "uid-n1", ResourceVersion: "10"}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func readyCond(alive bool, transitioned metav1.Time) corev1.NodeCondition {
	if alive {
		return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: ReasonAlive, Message: MessageAlive, LastTransitionTime: transitioned}
	}
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: ReasonDead, Message: MessageDead, LastTransitionTime: transitioned}
}

// withReady stores the Ready condition gossip gave at an earlier pass, after
// a MemoryPressure condition this controller must keep.
func withReady(alive bool) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Conditions = []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			readyCond(alive, earlier),
		}
	}
}

func unreachableTaint() corev1.Taint {
	t := UnreachableTaint
	t.TimeAdded = &earlier
	return t
}

var cordon = corev1.Taint{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule}

func withTaints(ts ...corev1.Taint) nodeOpt {
	return func(n *corev1.Node) { n.Spec.Taints = ts }
}

// podCond is a pod condition.
func podCond(t corev1.PodConditionType, s corev1.ConditionStatus, reason, message string, at metav1.Time) corev1.PodCondition {
	return corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: message, LastTransitionTime: at}
}

// podConds is what the kubelet writes, in its order, with the given Ready
// and ContainersReady conditions: Initialized and PodScheduled True since
// earlier.
func podConds(ready, containersReady corev1.PodCondition) []corev1.PodCondition {
	return []corev1.PodCondition{
		podCond(corev1.PodInitialized, corev1.ConditionTrue, "", "", earlier),
		ready,
		containersReady,
		podCond(corev1.PodScheduled, corev1.ConditionTrue, "", "", earlier),
	}
}

// The conditions a ready pod of the fixture is written with: NodeNotReady
// sets Ready and ContainersReady False since now; NodeLost sets Ready False
// since now and leaves ContainersReady alone.
var (
	notReadyConds = podConds(
		podCond(corev1.PodReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, nowT),
		podCond(corev1.ContainersReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, nowT))
	lostConds = podConds(
		podCond(corev1.PodReady, corev1.ConditionFalse, ReasonNodeLost, "", nowT),
		podCond(corev1.ContainersReady, corev1.ConditionTrue, "", "", earlier))
)

type podOpt func(*corev1.Pod)

// pod is a ready Running pod on n1 with one container that restarted once.
func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "img"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: podConds(
				podCond(corev1.PodReady, corev1.ConditionTrue, "", "", earlier),
				podCond(corev1.ContainersReady, corev1.ConditionTrue, "", "", earlier)),
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Ready: true, RestartCount: 1,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: earlier}}}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func onNode(n string) podOpt          { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func tolerating(seconds *int64) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{
			Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds})
	}
}

// notReady is a pod the kubelet reports not ready: its container is not.
func notReady(p *corev1.Pod) {
	p.Status.Conditions = podConds(
		podCond(corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "", earlier),
		podCond(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", "", earlier))
	p.Status.ContainerStatuses[0].Ready = false
}

// markedNotReady is a pod this controller marked not Ready at marked.
func markedNotReady(p *corev1.Pod) {
	p.Status.Conditions = podConds(
		podCond(corev1.PodReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, marked),
		podCond(corev1.ContainersReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, marked))
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name      string
		node      *corev1.Node
		alive     bool
		deadFor   time.Duration // 0 with !alive: deadSince unknown
		timeout   time.Duration // 0 means the 10s default of the tests
		pods      []*corev1.Pod
		want      []string
		wantReady *corev1.NodeCondition // the Ready condition written, if any
		wantTaint []corev1.Taint        // the taints written, if the spec is
		// wantConds are the conditions of a pod written, by name; a pod
		// not listed must have notReadyConds (NodeNotReady) or lostConds
		// (NodeLost). Everything else of a written pod must be as read, but
		// for phase, reason and message of a NodeLost one.
		wantConds map[string][]corev1.PodCondition
		// later are the writes of each pass after the first, applying each
		// pass's writes: the pass count is len(later)+1, and the pass after
		// the last must write nothing.
		later [][]string
	}{
		{
			name:      "a new live node gets Ready True",
			node:      newNode(),
			alive:     true,
			want:      []string{"UpdateStatus Node n1 (NodeStatusUpdated)"},
			wantReady: ptr(readyCond(true, nowT)),
		},
		{
			name:  "alive and Ready: no writes",
			node:  newNode(withReady(true), withTaints(cordon)),
			alive: true,
			pods:  []*corev1.Pod{pod("a"), pod("b", notReady)},
		},
		{
			name:    "alive to dead: Ready False and the pod NotReady at once, the taint on the next pass",
			node:    newNode(withReady(true)),
			deadFor: time.Second,
			pods:    []*corev1.Pod{pod("a")},
			want: []string{
				"UpdateStatus Node n1 (NodeStatusUpdated)",
				"UpdateStatus Pod default/a (NodeNotReady)",
			},
			wantReady: ptr(readyCond(false, nowT)),
			later:     [][]string{{"Update Node n1 (TaintNodeUnreachable)"}},
		},
		{
			name:    "declared dead with two Ready pods: a NodeNotReady write per Ready pod, none for pods not Ready or terminal",
			node:    newNode(withReady(true), withTaints(cordon)),
			deadFor: time.Second,
			pods: []*corev1.Pod{
				pod("web-1"),
				pod("unready", notReady),
				pod("starting", phase(corev1.PodPending), notReady),
				pod("web-2"),
				// Terminal, though their stale Ready condition says True.
				pod("done", phase(corev1.PodSucceeded)),
				pod("failed", phase(corev1.PodFailed)),
				pod("elsewhere", onNode("n2")),
			},
			want: []string{
				"UpdateStatus Node n1 (NodeStatusUpdated)",
				"UpdateStatus Pod default/web-1 (NodeNotReady)",
				"UpdateStatus Pod default/web-2 (NodeNotReady)",
			},
			wantReady: ptr(readyCond(false, nowT)),
			later:     [][]string{{"Update Node n1 (TaintNodeUnreachable)"}},
		},
		{
			name:    "a Ready pod without ContainersReady: only Ready is set False, nothing added",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: time.Second,
			pods: []*corev1.Pod{pod("old", func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{
					podCond(corev1.PodScheduled, corev1.ConditionTrue, "", "", earlier),
					{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastProbeTime: earlier, LastTransitionTime: earlier},
				}
			})},
			want: []string{"UpdateStatus Pod default/old (NodeNotReady)"},
			wantConds: map[string][]corev1.PodCondition{"old": {
				podCond(corev1.PodScheduled, corev1.ConditionTrue, "", "", earlier),
				{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: ReasonNodeNotReady, Message: unreachable, LastProbeTime: earlier, LastTransitionTime: nowT},
			}},
		},
		{
			name:    "a Ready pod whose ContainersReady is already False: only Ready changes",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: time.Second,
			pods: []*corev1.Pod{pod("racing", func(p *corev1.Pod) {
				p.Status.Conditions[2] = podCond(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", "", earlier)
			})},
			want: []string{"UpdateStatus Pod default/racing (NodeNotReady)"},
			wantConds: map[string][]corev1.PodCondition{"racing": podConds(
				podCond(corev1.PodReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, nowT),
				podCond(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", "", earlier))},
		},
		{
			name:    "dead with Ready False: the unreachable taint is added, the Ready pod marked NotReady",
			node:    newNode(withReady(false), withTaints(cordon)),
			deadFor: time.Second,
			pods:    []*corev1.Pod{pod("a")},
			want: []string{
				"Update Node n1 (TaintNodeUnreachable)",
				"UpdateStatus Pod default/a (NodeNotReady)",
			},
			wantTaint: []corev1.Taint{cordon, {Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &nowT}},
		},
		{
			name:    "dead, before the eviction timeout: the Ready pod is marked NotReady, not failed",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: timeout - time.Second,
			pods:    []*corev1.Pod{pod("a")},
			want:    []string{"UpdateStatus Pod default/a (NodeNotReady)"},
		},
		{
			name:    "dead, pods already NotReady: no pod writes before the timeout",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: timeout - time.Second,
			pods: []*corev1.Pod{
				pod("marked", markedNotReady),
				pod("unready", notReady),
				pod("forever", tolerating(nil), markedNotReady),
			},
		},
		{
			name:    "dead for the eviction timeout: its unfinished pods are failed",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: timeout,
			pods: []*corev1.Pod{
				pod("running"),
				pod("pending", phase(corev1.PodPending)),
				pod("done", phase(corev1.PodSucceeded)),
				pod("failed", phase(corev1.PodFailed)),
				pod("elsewhere", onNode("n2")),
			},
			want: []string{
				"UpdateStatus Pod default/running (NodeLost)",
				"UpdateStatus Pod default/pending (NodeLost)",
			},
		},
		{
			name:    "the timeout passes on pods already NotReady: NodeLost as before, Ready's transition time kept",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: timeout,
			pods: []*corev1.Pod{
				pod("marked", markedNotReady),
				pod("unready", notReady),
				pod("forever", tolerating(nil), markedNotReady),
			},
			want: []string{
				"UpdateStatus Pod default/marked (NodeLost)",
				"UpdateStatus Pod default/unready (NodeLost)",
			},
			wantConds: map[string][]corev1.PodCondition{
				"marked": podConds(
					podCond(corev1.PodReady, corev1.ConditionFalse, ReasonNodeLost, "", marked),
					podCond(corev1.ContainersReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, marked)),
				"unready": podConds(
					podCond(corev1.PodReady, corev1.ConditionFalse, ReasonNodeLost, "", earlier),
					podCond(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", "", earlier)),
			},
		},
		{
			name:    "tolerations of the unreachable taint: for ever, or for a while; all are marked NotReady",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: 10 * time.Second,
			timeout: time.Minute,
			pods: []*corev1.Pod{
				pod("default"),                           // waits the 1m timeout
				pod("forever", tolerating(nil)),          // DaemonSet-style: stays
				pod("short", tolerating(ptr[int64](5))),  // goes after 5s
				pod("long", tolerating(ptr[int64](300))), // waits 5m
				pod("both", tolerating(ptr[int64](300)), tolerating(ptr[int64](2))),
				pod("tolerates-all", func(p *corev1.Pod) {
					p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
				}),
				pod("tolerates-other", func(p *corev1.Pod) {
					p.Spec.Tolerations = []corev1.Toleration{{Key: "other", Operator: corev1.TolerationOpExists}}
				}),
			},
			want: []string{
				"UpdateStatus Pod default/default (NodeNotReady)",
				"UpdateStatus Pod default/forever (NodeNotReady)",
				"UpdateStatus Pod default/short (NodeLost)",
				"UpdateStatus Pod default/long (NodeNotReady)",
				"UpdateStatus Pod default/both (NodeLost)",
				"UpdateStatus Pod default/tolerates-all (NodeNotReady)",
				"UpdateStatus Pod default/tolerates-other (NodeNotReady)",
			},
		},
		{
			name:    "dead since an unknown time: nothing is evicted, Ready pods are marked NotReady",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: 0,
			pods:    []*corev1.Pod{pod("a"), pod("b", markedNotReady)},
			want:    []string{"UpdateStatus Pod default/a (NodeNotReady)"},
		},
		{
			name:  "dead to alive: Ready True first, the taint goes next; failed and NotReady pods stay",
			node:  newNode(withReady(false), withTaints(cordon, unreachableTaint())),
			alive: true,
			pods: []*corev1.Pod{
				pod("a", phase(corev1.PodFailed)),
				pod("b"),
				pod("c", markedNotReady), // its kubelet, not this controller, makes it Ready again
			},
			want:      []string{"UpdateStatus Node n1 (NodeStatusUpdated)"},
			wantReady: ptr(readyCond(true, nowT)),
			later:     [][]string{{"Update Node n1 (RemoveTaintNodeUnreachable)"}},
		},
		{
			name:      "alive and Ready with the taint left: it is removed, others kept",
			node:      newNode(withReady(true), withTaints(cordon, unreachableTaint())),
			alive:     true,
			want:      []string{"Update Node n1 (RemoveTaintNodeUnreachable)"},
			wantTaint: []corev1.Taint{cordon},
		},
		{
			name: "a changed message is rewritten; transition and heartbeat times kept",
			node: newNode(func(n *corev1.Node) {
				c := readyCond(true, earlier)
				c.Message = "kubelet is posting ready status"
				c.LastHeartbeatTime = earlier
				n.Status.Conditions = []corev1.NodeCondition{c}
			}),
			alive: true,
			want:  []string{"UpdateStatus Node n1 (NodeStatusUpdated)"},
			wantReady: func() *corev1.NodeCondition {
				c := readyCond(true, earlier)
				c.LastHeartbeatTime = earlier
				return &c
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := controllertest.Env(now)
			var deadSince time.Time
			if !tt.alive && tt.deadFor > 0 {
				deadSince = now.Add(-tt.deadFor)
			}
			timeout := cmpOr(tt.timeout, timeout)
			check := controllertest.Frozen(t, tt.node, tt.pods)
			writes := Reconcile(env, tt.node, tt.alive, deadSince, timeout, tt.pods)
			check()

			if got := controllertest.Summary(writes); !slices.Equal(got, tt.want) {
				t.Errorf("writes:\n got %q\nwant %q", got, tt.want)
			}
			checkOncePerObject(t, writes)
			for _, w := range writes {
				switch o := w.Object.(type) {
				case *corev1.Node:
					if w.Action == controller.UpdateStatus {
						if got := nodeCondition(o, corev1.NodeReady); !apiequality.Semantic.DeepEqual(got, tt.wantReady) {
							t.Errorf("Ready condition:\n got %+v\nwant %+v", got, tt.wantReady)
						}
						if len(o.Status.Conditions) > 1 && o.Status.Conditions[0].Type != corev1.NodeMemoryPressure {
							t.Errorf("other conditions lost: %+v", o.Status.Conditions)
						}
					} else if !apiequality.Semantic.DeepEqual(o.Spec.Taints, tt.wantTaint) {
						t.Errorf("taints:\n got %+v\nwant %+v", o.Spec.Taints, tt.wantTaint)
					}
				case *corev1.Pod:
					in := findPod(t, tt.pods, o.Name)
					want, ok := tt.wantConds[o.Name]
					if !ok {
						want = map[string][]corev1.PodCondition{ReasonNodeNotReady: notReadyConds, ReasonNodeLost: lostConds}[w.Reason]
					}
					checkPodWrite(t, w, in, want)
				}
			}
			for name := range tt.wantConds {
				if !slices.ContainsFunc(writes, func(w controller.Write) bool { return w.Kind == controller.KindPod && w.Object.GetName() == name }) {
					t.Errorf("pod %s: conditions expected, but it is not written", name)
				}
			}

			// Idempotence: applying each pass's writes reaches a fixed
			// point after exactly len(tt.later)+1 passes.
			store := controllertest.NewStore(t, now, append([]metav1.Object{tt.node}, objects(tt.pods)...)...)
			store.Apply(writes)
			var later [][]string
			for range len(tt.later) + 1 {
				w := Reconcile(env, store.Node("n1"), tt.alive, deadSince, timeout, store.Pods())
				if len(w) == 0 {
					break
				}
				checkOncePerObject(t, w)
				later = append(later, controllertest.Summary(w))
				store.Apply(w)
			}
			if !slices.EqualFunc(later, tt.later, slices.Equal) {
				t.Errorf("writes of the passes after the first, applying each:\n got %q\nwant %q", later, tt.later)
			}
		})
	}
}

// checkOncePerObject checks that a reconcile writes each object at most once.
func checkOncePerObject(t *testing.T, writes []controller.Write) {
	t.Helper()
	seen := map[string]bool{}
	for _, w := range writes {
		k := fmt.Sprintf("%s %s/%s", w.Kind, w.Object.GetNamespace(), w.Object.GetName())
		if seen[k] {
			t.Errorf("%s written twice in one pass: %q", k, controllertest.Summary(writes))
		}
		seen[k] = true
	}
}

func findPod(t *testing.T, pods []*corev1.Pod, name string) *corev1.Pod {
	t.Helper()
	for _, p := range pods {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("pod %s written but not given", name)
	return nil
}

// checkPodWrite checks that w writes in's status with the conditions want,
// keeping everything else as read (resourceVersion included: the write is a
// compare-and-swap of what was read), but for the phase, reason and message
// of a pod failed for its lost node.
func checkPodWrite(t *testing.T, w controller.Write, in *corev1.Pod, want []corev1.PodCondition) {
	t.Helper()
	if w.Action != controller.UpdateStatus {
		t.Errorf("pod %s: %v, want an UpdateStatus", in.Name, w)
	}
	exp := in.DeepCopy()
	exp.Status.Conditions = want
	switch w.Reason {
	case ReasonNodeNotReady:
	case ReasonNodeLost:
		exp.Status.Phase, exp.Status.Reason, exp.Status.Message = corev1.PodFailed, ReasonNodeLost, unreachable
	default:
		t.Errorf("pod %s: written for %q", in.Name, w.Reason)
	}
	got := w.Object.(*corev1.Pod)
	if !apiequality.Semantic.DeepEqual(got.Status.Conditions, exp.Status.Conditions) {
		t.Errorf("pod %s (%s) conditions:\n got %+v\nwant %+v", in.Name, w.Reason, got.Status.Conditions, exp.Status.Conditions)
	}
	if !apiequality.Semantic.DeepEqual(got, exp) {
		t.Errorf("pod %s (%s):\n got %+v\nwant %+v", in.Name, w.Reason, got, exp)
	}
}

func objects(pods []*corev1.Pod) []metav1.Object {
	out := make([]metav1.Object, len(pods))
	for i, p := range pods {
		out[i] = p
	}
	return out
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// TestGossipFlaps drives one node through alive, dead past the timeout and
// back, applying every write, and checks what each pass writes until each
// step settles.
func TestGossipFlaps(t *testing.T) {
	store := controllertest.NewStore(t, now, newNode(), pod("a"), pod("b", tolerating(nil)))
	clock := now
	step := func(alive bool, deadSince time.Time) [][]string {
		var passes [][]string
		for range 5 {
			env := controllertest.Env(clock)
			w := Reconcile(env, store.Node("n1"), alive, deadSince, timeout, store.Pods())
			if len(w) == 0 {
				return passes
			}
			checkOncePerObject(t, w)
			passes = append(passes, controllertest.Summary(w))
			store.Apply(w)
		}
		t.Fatalf("no fixed point after 5 passes: %q", passes)
		return nil
	}
	steps := []struct {
		name    string
		advance time.Duration
		alive   bool
		want    [][]string // the writes of each pass
	}{
		{"joins", 0, true, [][]string{{"UpdateStatus Node n1 (NodeStatusUpdated)"}}},
		{"declared dead", time.Minute, false, [][]string{
			{"UpdateStatus Node n1 (NodeStatusUpdated)", "UpdateStatus Pod default/a (NodeNotReady)", "UpdateStatus Pod default/b (NodeNotReady)"},
			{"Update Node n1 (TaintNodeUnreachable)"},
		}},
		{"still dead, within the timeout", timeout / 2, false, nil},
		{"dead past the timeout", timeout / 2, false, [][]string{{"UpdateStatus Pod default/a (NodeLost)"}}},
		{"back", time.Minute, true, [][]string{
			{"UpdateStatus Node n1 (NodeStatusUpdated)"},
			{"Update Node n1 (RemoveTaintNodeUnreachable)"},
		}},
	}
	var deadSince time.Time
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock = clock.Add(s.advance)
			if !s.alive && deadSince.IsZero() {
				deadSince = clock
			}
			if s.alive {
				deadSince = time.Time{}
			}
			if got := step(s.alive, deadSince); !slices.EqualFunc(got, s.want, slices.Equal) {
				t.Errorf("writes of each pass:\n got %q\nwant %q", got, s.want)
			}
		})
	}
	n := store.Node("n1")
	if c := nodeCondition(n, corev1.NodeReady); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Equal(ptr(metav1.NewTime(clock))) {
		t.Errorf("final Ready condition %+v, want True since %v", c, clock)
	}
	if len(n.Spec.Taints) != 0 {
		t.Errorf("taints left: %+v", n.Spec.Taints)
	}

	// a was marked NotReady when its node died, then failed: Ready has been
	// False since the node died. b tolerates the taint: it stays, not Ready
	// until its kubelet says otherwise.
	died := metav1.NewTime(now.Add(time.Minute))
	pods := store.Pods()
	wantA := podConds(
		podCond(corev1.PodReady, corev1.ConditionFalse, ReasonNodeLost, "", died),
		podCond(corev1.ContainersReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, died))
	if a := pods[0]; a.Status.Phase != corev1.PodFailed || a.Status.Reason != ReasonNodeLost || !apiequality.Semantic.DeepEqual(a.Status.Conditions, wantA) {
		t.Errorf("final pod a: phase %s reason %q conditions %+v\nwant Failed NodeLost with %+v", a.Status.Phase, a.Status.Reason, a.Status.Conditions, wantA)
	}
	wantB := podConds(
		podCond(corev1.PodReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, died),
		podCond(corev1.ContainersReady, corev1.ConditionFalse, ReasonNodeNotReady, unreachable, died))
	if b := pods[1]; b.Status.Phase != corev1.PodRunning || !apiequality.Semantic.DeepEqual(b.Status.Conditions, wantB) {
		t.Errorf("final pod b: phase %s conditions %+v\nwant Running with %+v", b.Status.Phase, b.Status.Conditions, wantB)
	}
}
