package replicaset

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/controllertest"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const ns = "default"

func ptr[T any](v T) *T { return &v }

type rsOpt func(*appsv1.ReplicaSet)

// newRS is ReplicaSet default/web selecting app=web, at generation 2.
func newRS(replicas *int32, opts ...rsOpt) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, UID: "uid-web", ResourceVersion: "100", Generation: 2},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:1"}}},
			},
		},
	}
	for _, o := range opts {
		o(rs)
	}
	return rs
}

// withStatus sets the status the RS already has.
func withStatus(replicas, full, ready, available int32) rsOpt {
	return func(rs *appsv1.ReplicaSet) {
		rs.Status = appsv1.ReplicaSetStatus{Replicas: replicas, FullyLabeledReplicas: full, ReadyReplicas: ready, AvailableReplicas: available, ObservedGeneration: rs.Generation}
	}
}

type podOpt func(*corev1.Pod)

// pod is a Running pod on n1 controlled by RS web, labelled app=web, not
// ready, created an hour ago.
func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID("uid-" + name), ResourceVersion: "1",
			Labels:            map[string]string{"app": "web"},
			CreationTimestamp: metav1.NewTime(now.Add(-time.Hour)),
			OwnerReferences:   []metav1.OwnerReference{ref("web", "uid-web")},
		},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "img:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func ref(name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: uid, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}
}

func orphan() podOpt { return func(p *corev1.Pod) { p.OwnerReferences = nil } }
func controlledBy(uid string) podOpt {
	return func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{ref("web", types.UID(uid))} }
}
func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func unscheduled() podOpt {
	return func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodPending }
}
func inNamespace(n string) podOpt { return func(p *corev1.Pod) { p.Namespace = n } }
func withLabels(l map[string]string) podOpt {
	return func(p *corev1.Pod) { p.Labels = l }
}
func created(ago time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(now.Add(-ago)) }
}
func deleting() podOpt {
	return func(p *corev1.Pod) { p.DeletionTimestamp = ptr(metav1.NewTime(now)) }
}
func restarts(n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	}
}

// readyFor makes the pod ready since d ago.
func readyFor(d time.Duration) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-d))}}
	}
}

func status(replicas, full, ready, available int32) *appsv1.ReplicaSetStatus {
	return &appsv1.ReplicaSetStatus{Replicas: replicas, FullyLabeledReplicas: full, ReadyReplicas: ready, AvailableReplicas: available, ObservedGeneration: 2}
}

func creates(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "Create Pod default/" + n + " (SuccessfulCreate)"
	}
	return out
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name       string
		rs         *appsv1.ReplicaSet
		pods       []*corev1.Pod
		want       []string                 // the writes other than the status
		wantStatus *appsv1.ReplicaSetStatus // nil: no status write
		passes     int                      // reconciles after applying until no writes; 0 means 1
	}{
		{
			name:       "create to N",
			rs:         newRS(ptr[int32](3)),
			want:       creates("web-00001", "web-00002", "web-00003"),
			wantStatus: status(3, 3, 0, 0),
		},
		{
			name:       "nil replicas means 1",
			rs:         newRS(nil),
			want:       creates("web-00001"),
			wantStatus: status(1, 1, 0, 0),
		},
		{
			name:       "zero replicas and no pods: nothing but the status",
			rs:         newRS(ptr[int32](0)),
			wantStatus: status(0, 0, 0, 0),
		},
		{
			name:       "scale up keeps the existing pods",
			rs:         newRS(ptr[int32](4), withStatus(2, 2, 2, 2)),
			pods:       []*corev1.Pod{pod("a", readyFor(time.Hour)), pod("b", readyFor(time.Hour))},
			want:       creates("web-00001", "web-00002"),
			wantStatus: status(4, 4, 2, 2),
		},
		{
			name: "scale down deletes in Kubernetes' order",
			rs:   newRS(ptr[int32](2), withStatus(8, 8, 5, 5)),
			pods: []*corev1.Pod{
				pod("ready-old", readyFor(time.Hour), created(3*time.Hour)),
				pod("ready-new", readyFor(time.Hour), created(time.Hour)),
				pod("ready-restarted", readyFor(time.Hour), restarts(4), created(4*time.Hour)),
				pod("running-unready"),
				pod("pending", phase(corev1.PodPending)),
				pod("unscheduled", unscheduled()),
				pod("ready-oldest", readyFor(time.Hour), created(5*time.Hour)),
				pod("ready-restarted-more", readyFor(time.Hour), restarts(9), created(6*time.Hour)),
			},
			want: []string{
				"Delete Pod default/unscheduled (SuccessfulDelete)",
				"Delete Pod default/pending (SuccessfulDelete)",
				"Delete Pod default/running-unready (SuccessfulDelete)",
				"Delete Pod default/ready-restarted-more (SuccessfulDelete)",
				"Delete Pod default/ready-restarted (SuccessfulDelete)",
				"Delete Pod default/ready-new (SuccessfulDelete)",
			},
			wantStatus: status(2, 2, 2, 2),
		},
		{
			name:       "in sync: no writes",
			rs:         newRS(ptr[int32](2), withStatus(2, 2, 1, 1)),
			pods:       []*corev1.Pod{pod("a", readyFor(time.Hour)), pod("b")},
			wantStatus: nil,
		},
		{
			name: "adopts matching orphans, skips finished and deleting ones",
			rs:   newRS(ptr[int32](2), withStatus(1, 1, 0, 0)),
			pods: []*corev1.Pod{
				pod("mine"),
				pod("stray", orphan()),
				pod("stray-failed", orphan(), phase(corev1.PodFailed)),
				pod("stray-deleting", orphan(), deleting()),
				pod("other-app", orphan(), withLabels(map[string]string{"app": "db"})),
			},
			want:       []string{"Update Pod default/stray (AdoptedPod)"},
			wantStatus: status(2, 2, 0, 0),
		},
		{
			name: "an orphan picked as surplus is deleted, not adopted",
			rs:   newRS(ptr[int32](1), withStatus(1, 1, 1, 1)),
			pods: []*corev1.Pod{
				pod("mine", readyFor(time.Hour)),
				pod("stray", orphan()),
			},
			want:       []string{"Delete Pod default/stray (SuccessfulDelete)"},
			wantStatus: nil,
		},
		{
			name: "never touches pods controlled by someone else",
			rs:   newRS(ptr[int32](1), withStatus(1, 1, 0, 0)),
			pods: []*corev1.Pod{
				pod("mine"),
				pod("theirs", controlledBy("uid-other")),
				pod("theirs-failed", controlledBy("uid-other"), phase(corev1.PodFailed)),
				pod("stale-owner", controlledBy("uid-web-before-recreate")),
				pod("other-namespace", orphan(), inNamespace("prod")),
			},
			wantStatus: nil,
		},
		{
			name: "finished pods are deleted and replaced",
			rs:   newRS(ptr[int32](3), withStatus(1, 1, 1, 1)),
			pods: []*corev1.Pod{
				pod("ok", readyFor(time.Hour)),
				pod("failed", phase(corev1.PodFailed)),
				pod("succeeded", phase(corev1.PodSucceeded)),
			},
			want: append([]string{
				"Delete Pod default/failed (DeletedFinishedPod)",
				"Delete Pod default/succeeded (DeletedFinishedPod)",
			}, creates("web-00001", "web-00002")...),
			wantStatus: status(3, 3, 1, 1),
		},
		{
			name:       "a pod being deleted no longer counts",
			rs:         newRS(ptr[int32](1), withStatus(1, 1, 1, 1)),
			pods:       []*corev1.Pod{pod("going", deleting(), readyFor(time.Hour))},
			want:       creates("web-00001"),
			wantStatus: status(1, 1, 0, 0),
		},
		{
			name: "a relabeled pod is released and replaced",
			rs:   newRS(ptr[int32](1), withStatus(1, 1, 1, 1)),
			pods: []*corev1.Pod{pod("debug-me", readyFor(time.Hour), withLabels(map[string]string{"app": "debug"}))},
			want: append([]string{"Update Pod default/debug-me (ReleasedPod)"},
				creates("web-00001")...),
			wantStatus: status(1, 1, 0, 0),
		},
		{
			name: "status counts: fully labeled, ready, available after minReadySeconds",
			rs: newRS(ptr[int32](4), func(rs *appsv1.ReplicaSet) {
				rs.Spec.MinReadySeconds = 30
				rs.Spec.Template.Labels["tier"] = "front"
			}),
			pods: []*corev1.Pod{
				pod("available", readyFor(31*time.Second), withLabels(map[string]string{"app": "web", "tier": "front"})),
				pod("just-available", readyFor(30*time.Second), withLabels(map[string]string{"app": "web", "tier": "front"})),
				pod("ready-too-recently", readyFor(29*time.Second), withLabels(map[string]string{"app": "web", "tier": "front"})),
				pod("not-fully-labeled"),
			},
			wantStatus: status(4, 3, 3, 2),
		},
		{
			name:       "creations are capped at BurstReplicas per reconcile",
			rs:         newRS(ptr[int32](BurstReplicas + 20)),
			want:       creates(names(BurstReplicas)...),
			wantStatus: status(BurstReplicas, BurstReplicas, 0, 0),
			passes:     2,
		},
		{
			name: "a template outside the selector creates nothing",
			rs: newRS(ptr[int32](2), func(rs *appsv1.ReplicaSet) {
				rs.Spec.Template.Labels = map[string]string{"app": "other"}
			}),
			wantStatus: status(0, 0, 0, 0),
		},
		{
			name: "a ReplicaSet being deleted only writes its status",
			rs: newRS(ptr[int32](3), func(rs *appsv1.ReplicaSet) {
				rs.DeletionTimestamp = ptr(metav1.NewTime(now))
			}),
			pods:       []*corev1.Pod{pod("mine"), pod("failed", phase(corev1.PodFailed)), pod("stray", orphan())},
			wantStatus: status(1, 1, 0, 0),
		},
		{
			name: "an empty selector is refused: no writes",
			rs: newRS(ptr[int32](3), func(rs *appsv1.ReplicaSet) {
				rs.Spec.Selector = &metav1.LabelSelector{}
			}),
			pods: []*corev1.Pod{pod("stray", orphan())},
		},
		{
			name: "status records the observed generation",
			rs: newRS(ptr[int32](1), withStatus(1, 1, 1, 1), func(rs *appsv1.ReplicaSet) {
				rs.Status.ObservedGeneration = 1
			}),
			pods:       []*corev1.Pod{pod("a", readyFor(time.Hour))},
			wantStatus: status(1, 1, 1, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := controllertest.Env(now)
			check := controllertest.Frozen(t, tt.rs, tt.pods)
			writes := Reconcile(env, tt.rs, tt.pods)
			check()

			var got []string
			var gotStatus *appsv1.ReplicaSetStatus
			for _, w := range writes {
				if w.Action == controller.UpdateStatus && w.Kind == controller.KindReplicaSet {
					gotStatus = &w.Object.(*appsv1.ReplicaSet).Status
					continue
				}
				got = append(got, w.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("writes:\n got %q\nwant %q", got, tt.want)
			}
			if !apiequality.Semantic.DeepEqual(gotStatus, tt.wantStatus) {
				t.Errorf("status:\n got %+v\nwant %+v", gotStatus, tt.wantStatus)
			}

			// Idempotence: the writes, applied, leave nothing to do.
			store := controllertest.NewStore(t, now, append([]metav1.Object{tt.rs}, objects(tt.pods)...)...)
			store.Apply(writes)
			settle(t, store, env, max(tt.passes, 1))
		})
	}
}

// settle reconciles and applies until no writes are left, failing when that
// takes more than passes reconciles.
func settle(t *testing.T, store *controllertest.Store, env controller.Env, passes int) {
	t.Helper()
	for pass := 1; ; pass++ {
		writes := Reconcile(env, store.ReplicaSet(ns, "web"), store.Pods())
		if len(writes) == 0 {
			return
		}
		if pass == passes {
			t.Fatalf("reconcile %d after applying still writes: %q", pass, controllertest.Summary(writes))
		}
		store.Apply(writes)
	}
}

func objects(pods []*corev1.Pod) []metav1.Object {
	out := make([]metav1.Object, len(pods))
	for i, p := range pods {
		out[i] = p
	}
	return out
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("web-%05d", i+1)
	}
	return out
}

func TestCreatedPodShape(t *testing.T) {
	rs := newRS(ptr[int32](1), func(rs *appsv1.ReplicaSet) {
		rs.Spec.Template.Labels["tier"] = "front"
		rs.Spec.Template.Annotations = map[string]string{"note": "x"}
		rs.Spec.Template.Spec.NodeName = "pinned" // never copied: the scheduler places pods
	})
	writes := Reconcile(controllertest.Env(now), rs, nil)
	if len(writes) != 2 || writes[0].Action != controller.Create {
		t.Fatalf("writes = %q, want one Create and the status", controllertest.Summary(writes))
	}
	p := writes[0].Object.(*corev1.Pod)
	want := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-00001", GenerateName: "web-", Namespace: ns,
			Labels:          map[string]string{"app": "web", "tier": "front"},
			Annotations:     map[string]string{"note": "x"},
			OwnerReferences: []metav1.OwnerReference{ref("web", "uid-web")},
		},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if !apiequality.Semantic.DeepEqual(p, want) {
		t.Errorf("created pod:\n got %+v\nwant %+v", p, want)
	}
	// The pod owns its maps: editing it must not edit the template.
	p.Labels["x"] = "y"
	if _, ok := rs.Spec.Template.Labels["x"]; ok {
		t.Error("created pod shares its labels map with the template")
	}
}

func TestNewNameCollisions(t *testing.T) {
	// A name generator that keeps returning taken names gives up after
	// nameTries and leaves the pod to the next reconcile.
	env := controller.Env{Now: now, NewName: func(prefix string) string { return prefix + "taken" }}
	rs := newRS(ptr[int32](3))
	writes := Reconcile(env, rs, []*corev1.Pod{pod("web-taken", controlledBy("uid-other"))})
	var creates []string
	for _, w := range writes {
		if w.Action == controller.Create {
			creates = append(creates, w.Object.GetName())
		}
	}
	if len(creates) != 0 {
		t.Errorf("created %q, want nothing while every name is taken", creates)
	}

	// Two pods of one batch never get the same name.
	n := 0
	env.NewName = func(prefix string) string { n++; return fmt.Sprintf("%s%05d", prefix, (n+1)/2) }
	writes = Reconcile(env, rs, nil)
	seen := map[string]bool{}
	for _, w := range writes {
		if w.Action == controller.Create {
			if seen[w.Object.GetName()] {
				t.Errorf("name %s used twice", w.Object.GetName())
			}
			seen[w.Object.GetName()] = true
		}
	}
	if len(seen) != 3 {
		t.Errorf("created %d pods, want 3", len(seen))
	}
}

func TestRank(t *testing.T) {
	// Most deletable first.
	want := []*corev1.Pod{
		pod("unscheduled", unscheduled()),
		pod("pending", phase(corev1.PodPending)),
		pod("unknown", phase(corev1.PodUnknown)),
		pod("running-unready"),
		pod("ready-restarts-9", readyFor(time.Hour), restarts(9)),
		pod("ready-restarts-1", readyFor(time.Hour), restarts(1)),
		pod("ready-new", readyFor(time.Hour), created(time.Minute)),
		pod("ready-old-a", readyFor(time.Hour), created(time.Hour)),
		pod("ready-old-b", readyFor(time.Hour), created(time.Hour)),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		got := slices.Clone(want)
		r.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortStableFunc(got, rank)
		if !slices.Equal(podNames(got), podNames(want)) {
			t.Fatalf("rank order:\n got %q\nwant %q", podNames(got), podNames(want))
		}
	}
}

func podNames(pods []*corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}
