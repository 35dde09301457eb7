package deployment

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/controllertest"
	"github.com/shoal-dev/shoal/agent/controller/replicaset"
)

func TestFenceposts(t *testing.T) {
	i := intstr.FromInt32
	s := intstr.FromString
	tests := []struct {
		name                 string
		surge, unavailable   *intstr.IntOrString
		desired              int32
		wantSurge, wantUnava int32
	}{
		{"defaults 25%: surge rounds up, unavailable down", nil, nil, 10, 3, 2},
		{"defaults of 4", nil, nil, 4, 1, 1},
		{"defaults of 1: surge 1, unavailable 0", nil, nil, 1, 1, 0},
		{"defaults of 3", nil, nil, 3, 1, 0},
		{"integers are taken as they are", ptr(i(2)), ptr(i(3)), 10, 2, 3},
		{"integers above desired too", ptr(i(7)), ptr(i(9)), 5, 7, 9},
		{"34% of 3", ptr(s("34%")), ptr(s("34%")), 3, 2, 1},
		{"50% of 3", ptr(s("50%")), ptr(s("50%")), 3, 2, 1},
		{"100%", ptr(s("100%")), ptr(s("100%")), 5, 5, 5},
		{"surge above 100%", ptr(s("150%")), ptr(s("0%")), 4, 6, 0},
		{"1% of 99 rounds to 1 and 0", ptr(s("1%")), ptr(s("1%")), 99, 1, 0},
		{"both zero by rounding: unavailable 1", ptr(s("0%")), ptr(s("10%")), 5, 0, 1},
		{"both given as zero: unavailable 1", ptr(i(0)), ptr(i(0)), 5, 0, 1},
		{"surge 1, unavailable 0", ptr(i(1)), ptr(i(0)), 6, 1, 0},
		{"zero desired", nil, nil, 0, 0, 1},
		{"a bad percentage counts as the default", ptr(s("lots")), ptr(s("x%")), 8, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gs, gu := Fenceposts(tt.surge, tt.unavailable, tt.desired)
			if gs != tt.wantSurge || gu != tt.wantUnava {
				t.Errorf("Fenceposts(%v, %v, %d) = %d, %d; want %d, %d", tt.surge, tt.unavailable, tt.desired, gs, gu, tt.wantSurge, tt.wantUnava)
			}
		})
	}
}

func TestMaxSurgeAndUnavailable(t *testing.T) {
	tests := []struct {
		name                  string
		d                     *appsv1.Deployment
		wantSurge, wantUnavai int32
	}{
		{"no strategy: 25% and 25%", newDeployment(ptr[int32](8)), 2, 2},
		{"Recreate: neither", newDeployment(ptr[int32](8), strategy(appsv1.RecreateDeploymentStrategyType, nil, nil)), 0, 0},
		{"zero replicas: none unavailable", newDeployment(ptr[int32](0), rollingUpdate("1", "1")), 1, 0},
		{"unavailable is at most the replicas", newDeployment(ptr[int32](3), rollingUpdate("0", "10")), 0, 3},
		{"rollingUpdate without values: defaults", newDeployment(ptr[int32](8), strategy(appsv1.RollingUpdateDeploymentStrategyType, nil, nil)), 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, u := MaxSurge(tt.d), MaxUnavailable(tt.d); s != tt.wantSurge || u != tt.wantUnavai {
				t.Errorf("MaxSurge, MaxUnavailable = %d, %d; want %d, %d", s, u, tt.wantSurge, tt.wantUnavai)
			}
		})
	}
}

func strategy(typ appsv1.DeploymentStrategyType, surge, unavailable *intstr.IntOrString) dOpt {
	return func(d *appsv1.Deployment) {
		d.Spec.Strategy.Type = typ
		if surge != nil || unavailable != nil {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavailable}
		}
	}
}

// rollingUpdate takes "1" or "25%".
func rollingUpdate(surge, unavailable string) dOpt {
	return strategy(appsv1.RollingUpdateDeploymentStrategyType, ptr(intstr.Parse(surge)), ptr(intstr.Parse(unavailable)))
}

func minReady(n int32) dOpt { return func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = n } }

func deadline(n int32) dOpt {
	return func(d *appsv1.Deployment) { d.Spec.ProgressDeadlineSeconds = &n }
}

// world runs the deployment and replicaset controllers on one store with a
// stand-in scheduler and kubelet, and a clock the test moves: a pod runs
// the round after it is bound and turns ready readyAfter after it started,
// unless never says it never will.
type world struct {
	t          *testing.T
	store      *controllertest.Store
	env        controller.Env
	readyAfter time.Duration
	never      func(*corev1.Pod) bool
	started    map[string]time.Time
	// check, when set, runs after every applied batch of writes.
	check  func(stage string)
	events []string // Write.Message of every write, in order
}

func newWorld(t *testing.T, d *appsv1.Deployment) *world {
	t.Helper()
	d = d.DeepCopy()
	d.ResourceVersion, d.UID = "", ""
	return &world{t: t, store: controllertest.NewStore(t, now, d), env: controllertest.Env(now),
		readyAfter: time.Second, started: map[string]time.Time{}}
}

func (w *world) apply(writes []controller.Write, stage string) int {
	w.t.Helper()
	for _, wr := range writes {
		if wr.Message != "" {
			w.events = append(w.events, wr.Message)
		}
	}
	w.store.Now = w.env.Now
	w.store.Apply(writes)
	if w.check != nil && len(writes) > 0 {
		w.check(stage)
	}
	return len(writes)
}

// round is one reconcile of every controller, then of the stand-ins.
func (w *world) round() int {
	w.t.Helper()
	n := w.apply(Reconcile(w.env, w.deployment(), w.store.ReplicaSets(), w.store.Pods()), "deployment")
	for _, rs := range w.store.ReplicaSets() {
		n += w.apply(replicaset.Reconcile(w.env, rs, w.store.Pods()), "replicaset "+rs.Name)
	}
	var binds, statuses []controller.Write
	for _, p := range w.store.Pods() {
		switch {
		case p.Spec.NodeName == "":
			p.Spec.NodeName = "n1"
			binds = append(binds, controller.Write{Action: controller.Update, Kind: controller.KindPod, Object: p, Reason: "Scheduled"})
		case p.Status.Phase == corev1.PodPending:
			p.Status.Phase = corev1.PodRunning
			w.started[p.Name] = w.env.Now
			statuses = append(statuses, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindPod, Object: p, Reason: "Started"})
		case !controller.IsPodReady(p) && (w.never == nil || !w.never(p)) && !w.env.Now.Before(w.started[p.Name].Add(w.readyAfter)):
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: w.env.Time()}}
			statuses = append(statuses, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindPod, Object: p, Reason: "Ready"})
		}
	}
	n += w.apply(binds, "scheduler")
	n += w.apply(statuses, "kubelet")
	return n
}

// runUntil runs rounds, moving the clock a second after each, until done
// holds; it fails the test after limit rounds.
func (w *world) runUntil(limit int, what string, done func() bool) {
	w.t.Helper()
	for range limit {
		w.round()
		if done() {
			return
		}
		w.env.Now = w.env.Now.Add(time.Second)
	}
	w.t.Fatalf("after %d rounds, not %s: %s", limit, what, w.describe())
}

func (w *world) deployment() *appsv1.Deployment { return w.store.Deployment(ns, "web") }

func (w *world) update(change func(*appsv1.Deployment)) {
	w.t.Helper()
	d := w.deployment()
	change(d)
	w.store.Apply([]controller.Write{{Action: controller.Update, Kind: controller.KindDeployment, Object: d, Reason: "User"}})
}

// rolledOut reports whether the Deployment's status says its rollout is
// complete for its current generation.
func (w *world) rolledOut() bool {
	d := w.deployment()
	st := d.Status
	c := getCondition(st.Conditions, appsv1.DeploymentProgressing)
	want := controller.Replicas(d.Spec.Replicas)
	return st.ObservedGeneration == d.Generation && st.UpdatedReplicas == want && st.Replicas == want &&
		st.AvailableReplicas == want && c != nil && c.Reason == ReasonComplete
}

// setOf returns the stored set running img.
func (w *world) setOf(img string) *appsv1.ReplicaSet {
	for _, rs := range w.store.ReplicaSets() {
		if rs.Spec.Template.Spec.Containers[0].Image == img {
			return rs
		}
	}
	return nil
}

// pods counts the pods in the store, those of img, and those available.
func (w *world) pods(img string) (all, ofImg, available int) {
	minReady := w.deployment().Spec.MinReadySeconds
	for _, p := range w.store.Pods() {
		all++
		if p.Spec.Containers[0].Image == img {
			ofImg++
		}
		if controller.IsPodAvailable(p, minReady, w.env.Now) {
			available++
		}
	}
	return all, ofImg, available
}

func (w *world) describe() string {
	var b strings.Builder
	d := w.deployment()
	fmt.Fprintf(&b, "deployment gen %d status %+v annotations %v;", d.Generation, d.Status, d.Annotations)
	for _, rs := range w.store.ReplicaSets() {
		fmt.Fprintf(&b, " set %s rev %s spec %d status %d/%d;", rs.Name, rs.Annotations[RevisionAnnotation], controller.Replicas(rs.Spec.Replicas), rs.Status.Replicas, rs.Status.AvailableReplicas)
	}
	all, _, avail := w.pods("")
	fmt.Fprintf(&b, " %d pods, %d available", all, avail)
	return b.String()
}

// TestRollingUpdateStaysWithinBounds rolls Deployments to a new template
// and back, and checks after every write of every controller that no more
// than replicas+maxSurge pods exist and no fewer than
// replicas-maxUnavailable are available.
func TestRollingUpdateStaysWithinBounds(t *testing.T) {
	tests := []struct {
		name               string
		replicas           int32
		surge, unavailable string
		minReady           int32
		maxPods, minAvail  int // the bounds, reached at some point
	}{
		{"6 replicas, surge 1, unavailable 0", 6, "1", "0", 2, 7, 6},
		{"10 replicas, 25% and 25%", 10, "25%", "25%", 1, 13, 8},
		{"4 replicas, surge 0, unavailable 1", 4, "0", "1", 0, 4, 3},
		{"3 replicas, surge 100%, unavailable 0", 3, "100%", "0", 1, 6, 3},
		{"5 replicas, surge 34%, unavailable 34%", 5, "34%", "34%", 0, 7, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, newDeployment(&tt.replicas, rollingUpdate(tt.surge, tt.unavailable), minReady(tt.minReady)))
			w.runUntil(30, "rolled out at first", w.rolledOut)

			maxPods, minAvail := 0, math.MaxInt
			w.check = func(stage string) {
				all, _, avail := w.pods("")
				maxPods, minAvail = max(maxPods, all), min(minAvail, avail)
				if all > tt.maxPods || avail < tt.minAvail {
					t.Fatalf("after the %s's writes: %d pods (at most %d), %d available (at least %d): %s",
						stage, all, tt.maxPods, avail, tt.minAvail, w.describe())
				}
			}
			for _, step := range []struct {
				img, rev string
			}{{"img:2", "2"}, {"img:1", "3"}} { // a rollout, then a rollback
				w.events = nil
				w.update(func(d *appsv1.Deployment) { d.Spec.Template = template(step.img) })
				w.runUntil(120, "rolled out to "+step.img, w.rolledOut)
				// One more round lets the old set's status catch up.
				w.round()
				if _, n, _ := w.pods(step.img); n != int(tt.replicas) {
					t.Fatalf("%d pods run %s, want %d: %s", n, step.img, tt.replicas, w.describe())
				}
				cur := w.setOf(step.img)
				if got := cur.Annotations[RevisionAnnotation]; got != step.rev {
					t.Errorf("set of %s has revision %q, want %s", step.img, got, step.rev)
				}
				if got := w.deployment().Annotations[RevisionAnnotation]; got != step.rev {
					t.Errorf("Deployment has revision %q, want %s", got, step.rev)
				}
				up := slices.IndexFunc(w.events, func(e string) bool { return strings.HasPrefix(e, "Scaled up ") })
				if up < 0 {
					t.Errorf("events %q: want the new set %s scaled up", w.events, cur.Name)
				}
				for _, e := range w.events {
					if strings.HasPrefix(e, "Scaled up ") && !strings.Contains(e, cur.Name) {
						t.Errorf("event %q: only the new set %s is scaled up", e, cur.Name)
					}
				}
				t.Logf("rollout to %s: at most %d pods, at least %d available; events %q", step.img, maxPods, minAvail, w.events)
			}
			if maxPods != tt.maxPods || minAvail != tt.minAvail {
				t.Errorf("bounds reached: %d pods, %d available; want %d and %d exactly (the strategy's room used)",
					maxPods, minAvail, tt.maxPods, tt.minAvail)
			}
		})
	}
}

// TestRecreate checks that a Recreate rollout never has pods of the old and
// the new template at once, and creates the new set only once the old pods
// are gone.
func TestRecreate(t *testing.T) {
	w := newWorld(t, newDeployment(ptr[int32](3), strategy(appsv1.RecreateDeploymentStrategyType, nil, nil)))
	w.runUntil(30, "rolled out at first", w.rolledOut)
	var order []string
	w.check = func(stage string) {
		_, olds, _ := w.pods("img:1")
		_, news, _ := w.pods("img:2")
		if olds > 0 && news > 0 {
			t.Fatalf("after the %s's writes: %d old and %d new pods at once: %s", stage, olds, news, w.describe())
		}
		if rs := w.setOf("img:2"); rs != nil && olds > 0 {
			t.Fatalf("after the %s's writes: new set %s exists while %d old pods are left", stage, rs.Name, olds)
		}
		if len(order) == 0 || order[len(order)-1] != fmt.Sprintf("old %d new %d", olds, news) {
			order = append(order, fmt.Sprintf("old %d new %d", olds, news))
		}
	}
	w.update(func(d *appsv1.Deployment) { d.Spec.Template = template("img:2") })
	w.runUntil(30, "rolled out to img:2", w.rolledOut)
	if want := "old 3 new 0,old 0 new 0,old 0 new 3"; strings.Join(order, ",") != want {
		t.Errorf("pods went %s, want %s", strings.Join(order, ","), want)
	}
	if got := strings.Join(w.events, "; "); !strings.Contains(got, "Scaled down replica set web-"+hashOf("img:1")+" to 0; Scaled up replica set web-"+hashOf("img:2")+" to 3") {
		t.Errorf("events %q", got)
	}
}

// TestProgressDeadline rolls to a template whose pods never become ready:
// the old pods stay, and deadline seconds after the last progress the
// Progressing condition turns False with ProgressDeadlineExceeded. Rolling
// back recovers.
func TestProgressDeadline(t *testing.T) {
	w := newWorld(t, newDeployment(ptr[int32](6), rollingUpdate("1", "0"), deadline(10)))
	w.never = func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image == "img:bad" }
	w.runUntil(30, "rolled out at first", w.rolledOut)
	w.update(func(d *appsv1.Deployment) { d.Spec.Template = template("img:bad") })

	timedOutCond := func() *appsv1.DeploymentCondition {
		c := getCondition(w.deployment().Status.Conditions, appsv1.DeploymentProgressing)
		if c != nil && c.Reason == ReasonTimedOut {
			return c
		}
		return nil
	}
	var lastProgress metav1.Time
	w.runUntil(30, "timed out", func() bool {
		c := getCondition(w.deployment().Status.Conditions, appsv1.DeploymentProgressing)
		if c != nil && c.Status == corev1.ConditionTrue {
			lastProgress = c.LastUpdateTime
		}
		return timedOutCond() != nil
	})
	c := timedOutCond()
	bad := w.setOf("img:bad")
	if c.Status != corev1.ConditionFalse || c.Message != fmt.Sprintf(messageTimedOut, bad.Name) {
		t.Errorf("condition %+v, want False with %q", c, fmt.Sprintf(messageTimedOut, bad.Name))
	}
	if elapsed := c.LastUpdateTime.Sub(lastProgress.Time); elapsed < 10*time.Second || elapsed > 12*time.Second {
		t.Errorf("timed out %s after the last progress, want just over 10s", elapsed)
	}
	if _, olds, avail := w.pods("img:1"); olds != 6 || avail < 6 {
		t.Errorf("%d old pods, %d available; want the 6 old pods kept: %s", olds, avail, w.describe())
	}
	if n := controller.Replicas(bad.Spec.Replicas); n != 1 {
		t.Errorf("the stuck set has %d replicas, want 1 (maxSurge)", n)
	}
	// It stays timed out while nothing moves.
	for range 5 {
		w.round()
		w.env.Now = w.env.Now.Add(time.Second)
	}
	if timedOutCond() == nil {
		t.Fatalf("no longer timed out without progress: %s", w.describe())
	}
	// Rolling back is progress again.
	w.update(func(d *appsv1.Deployment) { d.Spec.Template = template("img:1") })
	w.runUntil(30, "rolled back", w.rolledOut)
	if _, n, _ := w.pods("img:bad"); n != 0 {
		t.Errorf("%d pods of the bad template left", n)
	}
}

// TestPause checks that a paused Deployment neither starts nor continues a
// rollout and never times out, that scaling it resizes its only set, and
// that resuming finishes the rollout.
func TestPause(t *testing.T) {
	w := newWorld(t, newDeployment(ptr[int32](6), rollingUpdate("1", "0"), deadline(30)))
	w.runUntil(30, "rolled out at first", w.rolledOut)

	paused := func() bool {
		c := getCondition(w.deployment().Status.Conditions, appsv1.DeploymentProgressing)
		return c != nil && c.Reason == ReasonPaused && c.Status == corev1.ConditionUnknown && c.Message == messagePaused
	}
	t.Run("a template change while paused makes no set; a scale resizes the one there is", func(t *testing.T) {
		w.update(func(d *appsv1.Deployment) {
			d.Spec.Paused = true
			d.Spec.Template = template("img:2")
			d.Spec.Replicas = ptr[int32](4)
		})
		w.runUntil(10, "paused", func() bool {
			return paused() && controller.Replicas(w.setOf("img:1").Spec.Replicas) == 4
		})
		for range 5 {
			w.round()
			w.env.Now = w.env.Now.Add(time.Second)
		}
		if rs := w.setOf("img:2"); rs != nil {
			t.Fatalf("paused, yet set %s was made", rs.Name)
		}
		w.update(func(d *appsv1.Deployment) { d.Spec.Paused = false; d.Spec.Replicas = ptr[int32](6) })
		w.runUntil(60, "rolled out after resuming", w.rolledOut)
	})
	t.Run("pausing midway stops the rollout, past its deadline; resuming finishes it", func(t *testing.T) {
		w.update(func(d *appsv1.Deployment) { d.Spec.Template = template("img:3") })
		w.runUntil(30, "midway", func() bool {
			rs := w.setOf("img:3")
			return rs != nil && controller.Replicas(rs.Spec.Replicas) >= 2
		})
		w.update(func(d *appsv1.Deployment) { d.Spec.Paused = true })
		w.runUntil(5, "paused", paused)
		sizes := func() string {
			var parts []string
			for _, rs := range w.store.ReplicaSets() {
				parts = append(parts, fmt.Sprintf("%s=%d", rs.Name, controller.Replicas(rs.Spec.Replicas)))
			}
			return strings.Join(parts, " ")
		}
		before := sizes()
		for range 60 { // twice the deadline
			w.round()
			w.env.Now = w.env.Now.Add(time.Second)
			if got := sizes(); got != before {
				t.Fatalf("paused, yet sets went from %s to %s", before, got)
			}
		}
		if !paused() {
			t.Fatalf("a paused rollout left DeploymentPaused: %s", w.describe())
		}
		if st := w.deployment().Status; st.UpdatedReplicas >= 6 {
			t.Fatalf("paused midway, yet %d replicas are updated", st.UpdatedReplicas)
		}
		w.update(func(d *appsv1.Deployment) { d.Spec.Paused = false })
		w.round()
		if c := getCondition(w.deployment().Status.Conditions, appsv1.DeploymentProgressing); c == nil || c.Reason != ReasonResumed {
			// The revision annotation may take the first pass.
			w.round()
			if c := getCondition(w.deployment().Status.Conditions, appsv1.DeploymentProgressing); c == nil || (c.Reason != ReasonResumed && c.Reason != ReasonProgressing) {
				t.Errorf("after resuming, Progressing is %+v, want DeploymentResumed", c)
			}
		}
		w.runUntil(60, "rolled out after resuming", w.rolledOut)
	})
}

// TestNoDeadline checks that progressDeadlineSeconds of MaxInt32 means no
// Progressing condition at all, as in Kubernetes.
func TestNoDeadline(t *testing.T) {
	w := newWorld(t, newDeployment(ptr[int32](2), deadline(math.MaxInt32)))
	w.runUntil(30, "available", func() bool {
		st := w.deployment().Status
		return st.AvailableReplicas == 2 && st.ObservedGeneration == w.deployment().Generation
	})
	w.round()
	if c := getCondition(w.deployment().Status.Conditions, appsv1.DeploymentProgressing); c != nil {
		t.Errorf("Progressing %+v, want none", c)
	}
}
