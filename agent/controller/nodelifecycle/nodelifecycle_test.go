package nodelifecycle

import (
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
)

const timeout = 10 * time.Second

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

type podOpt func(*corev1.Pod)

// pod is a ready Running pod on n1 with one container that restarted once.
func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "img"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: earlier},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: earlier},
			},
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
		passes    int                   // reconciles after applying until no writes; 0 means 1
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
			pods:  []*corev1.Pod{pod("a")},
		},
		{
			name:      "alive to dead: Ready False at once, the taint on the next pass",
			node:      newNode(withReady(true)),
			deadFor:   time.Second,
			pods:      []*corev1.Pod{pod("a")},
			want:      []string{"UpdateStatus Node n1 (NodeStatusUpdated)"},
			wantReady: ptr(readyCond(false, nowT)),
			passes:    2,
		},
		{
			name:      "dead with Ready False: the unreachable taint is added",
			node:      newNode(withReady(false), withTaints(cordon)),
			deadFor:   time.Second,
			pods:      []*corev1.Pod{pod("a")},
			want:      []string{"Update Node n1 (TaintNodeUnreachable)"},
			wantTaint: []corev1.Taint{cordon, {Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &nowT}},
		},
		{
			name:    "dead, before the eviction timeout: no writes",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: timeout - time.Second,
			pods:    []*corev1.Pod{pod("a")},
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
			name:    "tolerations of the unreachable taint: for ever, or for a while",
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
				"UpdateStatus Pod default/short (NodeLost)",
				"UpdateStatus Pod default/both (NodeLost)",
			},
		},
		{
			name:    "dead since an unknown time: nothing is evicted",
			node:    newNode(withReady(false), withTaints(unreachableTaint())),
			deadFor: 0,
			pods:    []*corev1.Pod{pod("a")},
		},
		{
			name:      "dead to alive: Ready True first, the taint goes next; failed pods stay",
			node:      newNode(withReady(false), withTaints(cordon, unreachableTaint())),
			alive:     true,
			pods:      []*corev1.Pod{pod("a", phase(corev1.PodFailed)), pod("b")},
			want:      []string{"UpdateStatus Node n1 (NodeStatusUpdated)"},
			wantReady: ptr(readyCond(true, nowT)),
			passes:    2,
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
					checkFailed(t, o)
				}
			}

			store := controllertest.NewStore(t, now, append([]metav1.Object{tt.node}, objects(tt.pods)...)...)
			store.Apply(writes)
			for pass := 1; ; pass++ {
				w := Reconcile(env, store.Node("n1"), tt.alive, deadSince, timeout, store.Pods())
				if len(w) == 0 {
					break
				}
				if pass == max(tt.passes, 1) {
					t.Fatalf("reconcile %d after applying still writes: %q", pass, controllertest.Summary(w))
				}
				store.Apply(w)
			}
		})
	}
}

// checkFailed checks a pod failed for its lost node.
func checkFailed(t *testing.T, p *corev1.Pod) {
	t.Helper()
	if p.Status.Phase != corev1.PodFailed || p.Status.Reason != ReasonNodeLost || p.Status.Message != "node n1 is unreachable" {
		t.Errorf("pod %s: phase %s reason %q message %q, want Failed NodeLost", p.Name, p.Status.Phase, p.Status.Reason, p.Status.Message)
	}
	want := []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: earlier},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: ReasonNodeLost, LastTransitionTime: nowT},
	}
	if !apiequality.Semantic.DeepEqual(p.Status.Conditions, want) {
		t.Errorf("pod %s conditions:\n got %+v\nwant %+v", p.Name, p.Status.Conditions, want)
	}
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("pod %s container statuses not kept: %+v", p.Name, p.Status.ContainerStatuses)
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
// back, applying every write, and checks each step settles.
func TestGossipFlaps(t *testing.T) {
	store := controllertest.NewStore(t, now, newNode(), pod("a"), pod("b", tolerating(nil)))
	clock := now
	step := func(alive bool, deadSince time.Time) []string {
		var all []string
		for range 5 {
			env := controllertest.Env(clock)
			w := Reconcile(env, store.Node("n1"), alive, deadSince, timeout, store.Pods())
			if len(w) == 0 {
				return all
			}
			all = append(all, controllertest.Summary(w)...)
			store.Apply(w)
		}
		t.Fatalf("no fixed point after 5 passes: %q", all)
		return nil
	}
	steps := []struct {
		name    string
		advance time.Duration
		alive   bool
		want    []string
	}{
		{"joins", 0, true, []string{"UpdateStatus Node n1 (NodeStatusUpdated)"}},
		{"declared dead", time.Minute, false, []string{"UpdateStatus Node n1 (NodeStatusUpdated)", "Update Node n1 (TaintNodeUnreachable)"}},
		{"still dead, within the timeout", timeout / 2, false, nil},
		{"dead past the timeout", timeout / 2, false, []string{"UpdateStatus Pod default/a (NodeLost)"}},
		{"back", time.Minute, true, []string{"UpdateStatus Node n1 (NodeStatusUpdated)", "Update Node n1 (RemoveTaintNodeUnreachable)"}},
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
			if got := step(s.alive, deadSince); !slices.Equal(got, s.want) {
				t.Errorf("writes:\n got %q\nwant %q", got, s.want)
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
}
