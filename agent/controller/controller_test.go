package controller

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestSelector(t *testing.T) {
	tests := []struct {
		name string
		ls   *metav1.LabelSelector
		ok   bool
	}{
		{"nil", nil, false},
		{"empty", &metav1.LabelSelector{}, false},
		{"match labels", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, true},
		{"expression", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}}, true},
		{"invalid operator", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := Selector(tt.ls); ok != tt.ok {
				t.Errorf("ok = %v, want %v", ok, tt.ok)
			}
		})
	}
}

func TestClaim(t *testing.T) {
	owner := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "ns", UID: "uid-owner"}}
	mk := func(name, ns, app, controller string, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": app}}}
		if controller != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Name: "x", UID: types.UID(controller), Controller: new(true)}}
		}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	objs := []*corev1.Pod{
		mk("owned", "ns", "web", "uid-owner", false),
		mk("owned-relabeled", "ns", "db", "uid-owner", false),
		mk("orphan", "ns", "web", "", false),
		mk("orphan-deleting", "ns", "web", "", true),
		mk("orphan-other-app", "ns", "db", "", false),
		mk("foreign", "ns", "web", "uid-other", false),
		mk("other-namespace", "prod", "web", "", false),
	}
	sel, _ := Selector(&metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}})
	names := func(ps []*corev1.Pod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	c := Claim(owner, sel, objs)
	if got := names(c.Owned); !slices.Equal(got, []string{"owned"}) {
		t.Errorf("owned = %q", got)
	}
	if got := names(c.Adopt); !slices.Equal(got, []string{"orphan"}) {
		t.Errorf("adopt = %q", got)
	}
	if got := names(c.Release); !slices.Equal(got, []string{"owned-relabeled"}) {
		t.Errorf("release = %q", got)
	}

	owner.DeletionTimestamp = &metav1.Time{}
	c = Claim(owner, sel, objs)
	if len(c.Adopt) != 0 || len(c.Release) != 0 || !slices.Equal(names(c.Owned), []string{"owned"}) {
		t.Errorf("an owner being deleted: %+v, want only the owned pod", c)
	}
}

func TestOwnerRefs(t *testing.T) {
	owner := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "owner", UID: "uid-owner"}}
	other := metav1.OwnerReference{Name: "cm", UID: "uid-cm"}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{other}}}
	orig := p.OwnerReferences
	SetControllerRef(p, owner, corev1.SchemeGroupVersion.WithKind("Pod"))
	if !IsControlledBy(p, "uid-owner") || len(p.OwnerReferences) != 2 || len(orig) != 1 {
		t.Fatalf("after SetControllerRef: %+v (original %+v)", p.OwnerReferences, orig)
	}
	RemoveOwnerRef(p, "uid-owner")
	if IsControlledBy(p, "uid-owner") || !slices.Equal(p.OwnerReferences, []metav1.OwnerReference{other}) {
		t.Errorf("after RemoveOwnerRef: %+v", p.OwnerReferences)
	}
}

func TestIsPodAvailable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ready := func(status corev1.ConditionStatus, since time.Duration) *corev1.Pod {
		p := &corev1.Pod{}
		c := corev1.PodCondition{Type: corev1.PodReady, Status: status}
		if since >= 0 {
			c.LastTransitionTime = metav1.NewTime(now.Add(-since))
		}
		p.Status.Conditions = []corev1.PodCondition{c}
		return p
	}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		minReady int32
		want     bool
	}{
		{"no condition", &corev1.Pod{}, 0, false},
		{"not ready", ready(corev1.ConditionFalse, time.Hour), 0, false},
		{"ready, no minReadySeconds", ready(corev1.ConditionTrue, 0), 0, true},
		{"ready for less than minReadySeconds", ready(corev1.ConditionTrue, 9*time.Second), 10, false},
		{"ready for exactly minReadySeconds", ready(corev1.ConditionTrue, 10*time.Second), 10, true},
		{"ready with no transition time", ready(corev1.ConditionTrue, -1), 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPodAvailable(tt.pod, tt.minReady, now); got != tt.want {
				t.Errorf("IsPodAvailable = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnvTime(t *testing.T) {
	e := Env{Now: time.Date(2026, 1, 1, 0, 0, 0, 999_999_999, time.UTC)}
	if got := e.Time(); !got.Time.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Time() = %v, want whole seconds", got)
	}
}

func TestActionString(t *testing.T) {
	if Action(0).String() != "Action(0)" || UpdateStatus.String() != "UpdateStatus" {
		t.Errorf("got %s, %s", Action(0), UpdateStatus)
	}
}
