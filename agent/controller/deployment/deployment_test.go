package deployment

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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

var (
	now     = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	earlier = metav1.NewTime(now.Add(-time.Hour))
	nowT    = metav1.NewTime(now)
)

const ns = "default"

type dOpt func(*appsv1.Deployment)

// newDeployment is Deployment default/web selecting app=web, running img:1,
// at generation 3.
func newDeployment(replicas *int32, opts ...dOpt) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, UID: "uid-deploy", ResourceVersion: "100", Generation: 3},
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template("img:1"),
		},
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
}

func image(img string) dOpt { return func(d *appsv1.Deployment) { d.Spec.Template = template(img) } }

func historyLimit(n int32) dOpt {
	return func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = &n }
}

// rev is the revision annotation the controller keeps on the Deployment.
func rev(n string) dOpt {
	return func(d *appsv1.Deployment) {
		d.Annotations = withKey(d.Annotations, RevisionAnnotation, n)
	}
}

func withStatus(st appsv1.DeploymentStatus) dOpt {
	return func(d *appsv1.Deployment) { d.Status = st }
}

// setFor is the ReplicaSet the controller makes for d running img, as stored
// and observed by the replicaset controller with replicas pods.
func setFor(d *appsv1.Deployment, img string, rev int64, replicas int32, opts ...func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	dd := d.DeepCopy()
	dd.Spec.Template = template(img)
	rs := newReplicaSet(dd, TemplateHash(&dd.Spec.Template, nil), rev, replicas)
	rs.UID = types.UID("uid-" + rs.Name)
	rs.ResourceVersion = "50"
	rs.Generation = 1
	rs.CreationTimestamp = metav1.NewTime(now.Add(-time.Duration(100-rev) * time.Minute))
	rs.Status = appsv1.ReplicaSetStatus{Replicas: replicas, ObservedGeneration: 1}
	for _, o := range opts {
		o(rs)
	}
	return rs
}

func orphanSet(rs *appsv1.ReplicaSet) { rs.OwnerReferences = nil }

func foreignSet(rs *appsv1.ReplicaSet) {
	rs.OwnerReferences[0].UID = "uid-someone-else"
}

// podsOf makes n Running pods of rs, ready for the given time (0: not ready).
func podsOf(rs *appsv1.ReplicaSet, n int, readyFor time.Duration) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%d", rs.Name, i), Namespace: ns, ResourceVersion: "1",
				UID:             types.UID(fmt.Sprintf("uid-%s-%d", rs.Name, i)),
				Labels:          rs.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, gvkReplicaSet)},
			},
			Spec:   rs.Spec.Template.Spec,
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}
		if readyFor > 0 {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-readyFor))}}
		}
		out = append(out, p)
	}
	return out
}

func hashOf(img string) string {
	t := template(img)
	return TemplateHash(&t, nil)
}

func cond(typ appsv1.DeploymentConditionType, st corev1.ConditionStatus, reason, msg string, updated, transitioned metav1.Time) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: typ, Status: st, Reason: reason, Message: msg, LastUpdateTime: updated, LastTransitionTime: transitioned}
}

func available(at metav1.Time) appsv1.DeploymentCondition {
	return cond(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonAvailable, messageAvailable, at, at)
}

func unavailable(at metav1.Time) appsv1.DeploymentCondition {
	return cond(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonUnavailable, messageUnavailable, at, at)
}

func updating(rsName string, at metav1.Time) appsv1.DeploymentCondition {
	return cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonProgressing, fmt.Sprintf(messageProgressing, rsName), at, at)
}

func created(rsName string, at metav1.Time) appsv1.DeploymentCondition {
	return cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonCreated, fmt.Sprintf(messageCreated, rsName), at, at)
}

func found(rsName string, at metav1.Time) appsv1.DeploymentCondition {
	return cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFound, fmt.Sprintf(messageFound, rsName), at, at)
}

func complete(rsName string, at metav1.Time) appsv1.DeploymentCondition {
	return cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonComplete, fmt.Sprintf(messageComplete, rsName), at, at)
}

// counts is a status with observedGeneration 3.
func counts(replicas, updated, ready, avail, unavail int32, conds ...appsv1.DeploymentCondition) *appsv1.DeploymentStatus {
	return &appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: replicas, UpdatedReplicas: updated, ReadyReplicas: ready,
		AvailableReplicas: avail, UnavailableReplicas: unavail, Conditions: conds}
}

func TestReconcile(t *testing.T) {
	d3 := newDeployment(ptr[int32](3), rev("1"))
	cur := setFor(d3, "img:1", 1, 3)
	old := setFor(d3, "img:0", 1, 3)
	h1, h2 := hashOf("img:1"), hashOf("img:2")
	// olds are history: rev 1..4 at zero, drained; the current set is rev 5.
	history := func(d *appsv1.Deployment) []*appsv1.ReplicaSet {
		var sets []*appsv1.ReplicaSet
		for i := int64(1); i <= 4; i++ {
			sets = append(sets, setFor(d, fmt.Sprintf("img:old%d", i), i, 0))
		}
		return append(sets, setFor(d, "img:1", 5, 3))
	}
	foreign := setFor(d3, "img:1", 1, 3, foreignSet)
	foreign.Name, foreign.UID = "web-foreign", "uid-web-foreign"
	rolledOut := withStatus(*counts(3, 3, 3, 3, 0, available(earlier), complete("web-"+h1, earlier)))

	tests := []struct {
		name       string
		d          *appsv1.Deployment
		sets       []*appsv1.ReplicaSet
		pods       []*corev1.Pod
		want       []string                 // writes other than the Deployment's status
		wantStatus *appsv1.DeploymentStatus // nil: no status write
		passes     int                      // reconciles after applying until no writes; 0 means 1
	}{
		{
			name:       "creates the ReplicaSet of a new Deployment",
			d:          newDeployment(ptr[int32](3)),
			want:       []string{"Create ReplicaSet default/web-" + h1 + " (ScalingReplicaSet)"},
			wantStatus: counts(0, 0, 0, 0, 3, unavailable(nowT), created("web-"+h1, nowT)),
			passes:     2, // then the Deployment's revision annotation
		},
		{
			name:       "nil replicas means 1",
			d:          newDeployment(nil),
			want:       []string{"Create ReplicaSet default/web-" + h1 + " (ScalingReplicaSet)"},
			wantStatus: counts(0, 0, 0, 0, 1, unavailable(nowT), created("web-"+h1, nowT)),
			passes:     2,
		},
		{
			name: "the Deployment's revision annotation is written before its status",
			d:    newDeployment(ptr[int32](3)),
			sets: []*appsv1.ReplicaSet{cur},
			pods: podsOf(cur, 3, time.Hour),
			want: []string{"Update Deployment default/web (RevisionUpdated)"},
			// then the status
			passes: 2,
		},
		{
			name:       "scale is an update of the current set",
			d:          newDeployment(ptr[int32](5), rev("1")),
			sets:       []*appsv1.ReplicaSet{cur},
			pods:       podsOf(cur, 3, time.Hour),
			want:       []string{"Update ReplicaSet default/web-" + h1 + " (ScalingReplicaSet)"},
			wantStatus: counts(3, 3, 3, 3, 2, unavailable(nowT), updating("web-"+h1, nowT)),
		},
		{
			name:       "done: Available and NewReplicaSetAvailable",
			d:          d3,
			sets:       []*appsv1.ReplicaSet{cur},
			pods:       podsOf(cur, 3, time.Hour),
			wantStatus: counts(3, 3, 3, 3, 0, available(nowT), complete("web-"+h1, nowT)),
		},
		{
			name: "in sync: old condition timestamps are kept, no writes",
			d:    newDeployment(ptr[int32](3), rev("1"), rolledOut),
			sets: []*appsv1.ReplicaSet{cur},
			pods: podsOf(cur, 3, time.Hour),
		},
		{
			name: "a pod that stops being ready: Available flips, the finished rollout stays complete",
			d:    newDeployment(ptr[int32](3), rev("1"), rolledOut),
			sets: []*appsv1.ReplicaSet{cur},
			pods: append(podsOf(cur, 3, 0)[:1], podsOf(cur, 3, time.Hour)[1:]...),
			wantStatus: counts(3, 3, 2, 2, 1, unavailable(nowT),
				complete("web-"+h1, earlier)),
		},
		{
			name:       "availability waits for minReadySeconds",
			d:          newDeployment(ptr[int32](3), rev("1"), func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 60 }),
			sets:       []*appsv1.ReplicaSet{setFor(d3, "img:1", 1, 3, func(rs *appsv1.ReplicaSet) { rs.Spec.MinReadySeconds = 60 })},
			pods:       append(podsOf(cur, 3, 30*time.Second)[:2], podsOf(cur, 3, time.Hour)[2:]...),
			wantStatus: counts(3, 3, 3, 1, 2, unavailable(nowT), updating("web-"+h1, nowT)),
		},
		{
			name:       "minReadySeconds follows the Deployment",
			d:          newDeployment(ptr[int32](3), rev("1"), func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 60 }),
			sets:       []*appsv1.ReplicaSet{cur},
			pods:       podsOf(cur, 3, time.Hour),
			want:       []string{"Update ReplicaSet default/web-" + h1 + " (ReplicaSetUpdated)"},
			wantStatus: counts(3, 3, 3, 3, 0, available(nowT), complete("web-"+h1, nowT)),
		},
		{
			name: "annotations follow the Deployment, but its revision",
			d: newDeployment(ptr[int32](3), rev("1"), rolledOut, func(d *appsv1.Deployment) {
				d.Annotations[ChangeCauseAnnotation] = "shoal set image deployment/web c=img:1"
			}),
			sets: []*appsv1.ReplicaSet{cur},
			pods: podsOf(cur, 3, time.Hour),
			want: []string{"Update ReplicaSet default/web-" + h1 + " (ReplicaSetUpdated)"},
		},
		{
			name: "a template change creates a new set within maxSurge, old pods stay",
			d:    newDeployment(ptr[int32](3), image("img:2"), rev("1"), rolledOut),
			sets: []*appsv1.ReplicaSet{cur},
			pods: podsOf(cur, 3, time.Hour),
			want: []string{"Create ReplicaSet default/web-" + h2 + " (ScalingReplicaSet)"},
			wantStatus: counts(3, 0, 3, 3, 1, available(earlier),
				cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonCreated, fmt.Sprintf(messageCreated, "web-"+h2), nowT, earlier)),
			passes: 3, // the revision annotation, then the status; the new set's pods never come
		},
		{
			name: "back to an old template: that set is current again with the next revision",
			d:    newDeployment(ptr[int32](3), rev("2")),
			sets: []*appsv1.ReplicaSet{setFor(d3, "img:1", 1, 0), setFor(d3, "img:2", 2, 3)},
			want: []string{
				"Update ReplicaSet default/web-" + h1 + " (ScalingReplicaSet)",
				"Update Deployment default/web (RevisionUpdated)",
			},
			passes: 2, // then the status
		},
		{
			name: "history limit: the oldest drained sets beyond it are deleted",
			d:    newDeployment(ptr[int32](3), historyLimit(2), rev("5")),
			sets: history(d3),
			want: []string{
				"Delete ReplicaSet default/web-" + hashOf("img:old1") + " (DeletedOldReplicaSet)",
				"Delete ReplicaSet default/web-" + hashOf("img:old2") + " (DeletedOldReplicaSet)",
			},
			wantStatus: counts(0, 0, 0, 0, 3, unavailable(nowT), found("web-"+h1, nowT)),
		},
		{
			name: "history limit: a set with pods left, or not yet seen at zero, is kept",
			d:    newDeployment(ptr[int32](3), historyLimit(1), rev("5")),
			sets: func() []*appsv1.ReplicaSet {
				sets := history(d3)
				sets[1].Generation = 2 // rev 2 scaled down, not yet observed
				return sets
			}(),
			pods: func() []*corev1.Pod {
				p := podsOf(history(d3)[0], 1, 0)[0] // rev 1 still has a finished pod
				p.Status.Phase = corev1.PodFailed
				return []*corev1.Pod{p}
			}(),
			want: []string{
				"Delete ReplicaSet default/web-" + hashOf("img:old3") + " (DeletedOldReplicaSet)",
			},
			wantStatus: counts(0, 0, 0, 0, 3, unavailable(nowT), found("web-"+h1, nowT)),
		},
		{
			name: "history limit defaults to 10",
			d:    newDeployment(ptr[int32](3), rev("12")),
			sets: func() []*appsv1.ReplicaSet {
				var sets []*appsv1.ReplicaSet
				for i := int64(1); i <= 11; i++ {
					sets = append(sets, setFor(d3, fmt.Sprintf("img:old%d", i), i, 0))
				}
				return append(sets, setFor(d3, "img:1", 12, 3))
			}(),
			want:       []string{"Delete ReplicaSet default/web-" + hashOf("img:old1") + " (DeletedOldReplicaSet)"},
			wantStatus: counts(0, 0, 0, 0, 3, unavailable(nowT), found("web-"+h1, nowT)),
		},
		{
			name:       "adopts an orphan set matching the selector, scaling it in the same write",
			d:          d3,
			sets:       []*appsv1.ReplicaSet{setFor(d3, "img:1", 1, 2, orphanSet)},
			want:       []string{"Update ReplicaSet default/web-" + h1 + " (AdoptedReplicaSet)"},
			wantStatus: counts(0, 0, 0, 0, 3, unavailable(nowT), found("web-"+h1, nowT)),
		},
		{
			name:       "never touches sets controlled by someone else",
			d:          d3,
			sets:       []*appsv1.ReplicaSet{foreign},
			pods:       podsOf(foreign, 3, time.Hour),
			want:       []string{"Create ReplicaSet default/web-" + h1 + " (ScalingReplicaSet)"},
			wantStatus: counts(0, 0, 0, 0, 3, unavailable(nowT), created("web-"+h1, nowT)),
			passes:     2,
		},
		{
			name: "a hash collision raises collisionCount and creates nothing yet",
			d:    d3,
			sets: func() []*appsv1.ReplicaSet {
				rs := setFor(d3, "img:0", 1, 3)
				rs.Name = "web-" + h1 // taken by a set with another template
				return []*appsv1.ReplicaSet{rs}
			}(),
			wantStatus: func() *appsv1.DeploymentStatus {
				st := counts(0, 0, 0, 0, 3, unavailable(nowT))
				st.CollisionCount = ptr[int32](1)
				return st
			}(),
			passes: 4, // the next pass creates the set under the new name, then annotation and status
		},
		{
			name: "a Deployment being deleted only writes its status",
			d: newDeployment(ptr[int32](3), image("img:2"), func(d *appsv1.Deployment) {
				d.DeletionTimestamp = &nowT
			}),
			sets:       []*appsv1.ReplicaSet{old, setFor(d3, "img:9", 1, 1, orphanSet)},
			pods:       podsOf(old, 2, time.Hour),
			wantStatus: counts(2, 0, 2, 2, 1, unavailable(nowT)),
		},
		{
			name: "a template outside the selector is refused: no writes",
			d: newDeployment(ptr[int32](3), func(d *appsv1.Deployment) {
				d.Spec.Template.Labels = map[string]string{"app": "other"}
			}),
		},
		{
			name: "an empty selector is refused: no writes",
			d:    newDeployment(ptr[int32](3), func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }),
			sets: []*appsv1.ReplicaSet{setFor(d3, "img:1", 1, 2, orphanSet)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := controllertest.Env(now)
			check := controllertest.Frozen(t, tt.d, tt.sets, tt.pods)
			writes := Reconcile(env, tt.d, tt.sets, tt.pods)
			check()

			var got []string
			var gotStatus *appsv1.DeploymentStatus
			for _, w := range writes {
				if w.Kind == controller.KindDeployment && w.Action == controller.UpdateStatus {
					gotStatus = &w.Object.(*appsv1.Deployment).Status
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

			store := controllertest.NewStore(t, now, objects(tt.d, tt.sets, tt.pods)...)
			store.Apply(writes)
			settle(t, store, env, max(tt.passes, 1))
		})
	}
}

func settle(t *testing.T, store *controllertest.Store, env controller.Env, passes int) {
	t.Helper()
	for pass := 1; ; pass++ {
		writes := Reconcile(env, store.Deployment(ns, "web"), store.ReplicaSets(), store.Pods())
		if len(writes) == 0 {
			return
		}
		if pass == passes {
			t.Fatalf("reconcile %d after applying still writes: %q", pass, controllertest.Summary(writes))
		}
		store.Apply(writes)
	}
}

func objects(d *appsv1.Deployment, sets []*appsv1.ReplicaSet, pods []*corev1.Pod) []metav1.Object {
	out := []metav1.Object{d}
	for _, rs := range sets {
		out = append(out, rs)
	}
	for _, p := range pods {
		out = append(out, p)
	}
	return out
}

func TestNewReplicaSetShape(t *testing.T) {
	d := newDeployment(ptr[int32](4), func(d *appsv1.Deployment) {
		d.Spec.MinReadySeconds = 7
		d.Annotations = map[string]string{
			ChangeCauseAnnotation: "shoal set image deployment/web c=img:1",
			RevisionAnnotation:    "6",
			"kubectl.kubernetes.io/last-applied-configuration": "{}",
		}
	})
	old := setFor(d, "img:0", 6, 0)
	writes := Reconcile(controllertest.Env(now), d, []*appsv1.ReplicaSet{old}, nil)
	var rs *appsv1.ReplicaSet
	for _, w := range writes {
		if w.Action == controller.Create {
			rs = w.Object.(*appsv1.ReplicaSet)
		}
	}
	if rs == nil {
		t.Fatalf("no ReplicaSet created: %q", controllertest.Summary(writes))
	}
	h := hashOf("img:1")
	wantTmpl := template("img:1")
	wantTmpl.Labels[TemplateHashLabel] = h
	want := &appsv1.ReplicaSet{
		TypeMeta: metav1.TypeMeta{Kind: "ReplicaSet", APIVersion: "apps/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-" + h, Namespace: ns,
			Labels: map[string]string{"app": "web", TemplateHashLabel: h},
			Annotations: map[string]string{RevisionAnnotation: "7", // max existing + 1
				ChangeCauseAnnotation: "shoal set image deployment/web c=img:1"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid-deploy",
				Controller: ptr(true), BlockOwnerDeletion: ptr(true)}},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr[int32](4),
			MinReadySeconds: 7,
			Selector:        &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", TemplateHashLabel: h}},
			Template:        wantTmpl,
		},
	}
	if !apiequality.Semantic.DeepEqual(rs, want) {
		t.Errorf("created set:\n got %+v\nwant %+v", rs, want)
	}
	if d.Spec.Template.Labels[TemplateHashLabel] != "" || d.Spec.Selector.MatchLabels[TemplateHashLabel] != "" {
		t.Error("the Deployment's own template or selector was labelled")
	}
}

func TestTemplateHash(t *testing.T) {
	a, b := template("img:1"), template("img:1")
	h := TemplateHash(&a, nil)
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"same template, another call", TemplateHash(&a, nil), true},
		{"equal template, another value", TemplateHash(&b, nil), true},
		{"after a JSON round trip of the deployment", func() string {
			b, err := json.Marshal(newDeployment(ptr[int32](1)))
			if err != nil {
				t.Fatal(err)
			}
			var got appsv1.Deployment
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			return TemplateHash(&got.Spec.Template, nil)
		}(), true},
		{"another image", func() string { c := template("img:2"); return TemplateHash(&c, nil) }(), false},
		{"another label", func() string {
			c := template("img:1")
			c.Labels["x"] = "y"
			return TemplateHash(&c, nil)
		}(), false},
		{"a collision count", TemplateHash(&a, ptr[int32](1)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.got == h) != tt.same {
				t.Errorf("hash %q vs %q: same = %v, want %v", tt.got, h, tt.got == h, tt.same)
			}
			if len(tt.got) != 10 || strings.Trim(tt.got, "bcdfghjklmnpqrstvwxz2456789") != "" {
				t.Errorf("hash %q: want 10 characters of the safe alphabet", tt.got)
			}
		})
	}
	// Pinned: a change here renames every ReplicaSet of every running
	// Deployment, and they would all roll.
	if h != "79789d7f4f" {
		t.Errorf("TemplateHash(img:1) = %q, pinned %q", h, "79789d7f4f")
	}
}
