// Package replicaset keeps the number of running pods of a ReplicaSet equal
// to its spec.replicas: it creates missing pods from the template, deletes
// surplus and finished ones, adopts matching orphans and writes the status.
//
// It is a pure function (see package controller for the contract). It never
// touches a pod controlled by another object, nor schedules pods: created
// pods are Pending with no node, for the scheduler to place.
package replicaset

import (
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/agent/controller"
)

// BurstReplicas caps the pods one reconcile creates, and the pods it deletes
// as surplus, as Kubernetes' burstReplicas does: scaling 0 to 5000 is ten
// reconciles of 500 writes rather than one Raft burst of 5000, and a stale
// decision costs at most 500 refused writes. Each batch's writes trigger
// the next reconcile, so the cap slows nothing else down.
const BurstReplicas = 500

// nameTries bounds how often a reconcile asks Env.NewName for a name not yet
// taken in the namespace before it leaves that pod to the next reconcile.
const nameTries = 8

// Reasons of the writes, later turned into Events.
const (
	ReasonCreate         = "SuccessfulCreate"
	ReasonDelete         = "SuccessfulDelete"
	ReasonDeleteFinished = "DeletedFinishedPod"
	ReasonAdopt          = "AdoptedPod"
	ReasonRelease        = "ReleasedPod"
	ReasonStatus         = "StatusUpdated"
)

var gvk = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// Reconcile returns the writes that bring rs's pods to spec.replicas
// (nil means 1) and its status up to date. pods are all the pods of rs's
// namespace.
//
// Active pods are the owned ones neither finished (Succeeded, Failed) nor
// being deleted. Finished owned pods are deleted: the template restarts
// containers itself, so a finished pod is one that cannot run again, such as
// a pod the node lifecycle controller failed on a lost node. Missing pods are
// created, surplus ones deleted in Kubernetes' order (see rank), at most
// BurstReplicas of each per reconcile. The status counts the pods as these
// writes leave them.
//
// A ReplicaSet with an empty or invalid selector gets no writes at all; one
// being deleted gets its status only. If the template's labels do not match
// the selector no pod is created, since a created pod would not be counted
// and the next reconcile would create another.
func Reconcile(env controller.Env, rs *appsv1.ReplicaSet, pods []*corev1.Pod) []controller.Write {
	sel, ok := controller.Selector(rs.Spec.Selector)
	if !ok {
		return nil
	}
	claimed := controller.Claim(rs, sel, pods)
	manage := rs.DeletionTimestamp == nil

	// Writes go out as updates (adopt, release), deletions, creations, then
	// the status; the order carries no meaning for the runner.
	var updates, deletes []controller.Write
	var active []*corev1.Pod
	adopted := map[string]*corev1.Pod{} // by name: copies that now name rs as controller
	for _, p := range claimed.Owned {
		switch {
		case controller.IsPodActive(p):
			active = append(active, p)
		case controller.IsPodTerminal(p) && p.DeletionTimestamp == nil && manage:
			deletes = append(deletes, write(controller.Delete, p.DeepCopy(), ReasonDeleteFinished))
		}
	}
	for _, p := range claimed.Adopt {
		if !controller.IsPodActive(p) {
			continue // a finished orphan is nobody's business here
		}
		c := p.DeepCopy()
		controller.SetControllerRef(c, rs, gvk)
		adopted[c.Name] = c
		active = append(active, c)
	}
	for _, p := range claimed.Release {
		c := p.DeepCopy()
		controller.RemoveOwnerRef(c, rs.UID)
		updates = append(updates, write(controller.Update, c, ReasonRelease))
	}

	want := int(controller.Replicas(rs.Spec.Replicas))
	var created []*corev1.Pod
	surplus := map[string]bool{}
	if manage {
		switch diff := len(active) - want; {
		case diff < 0:
			created = newPods(env, rs, sel, pods, min(-diff, BurstReplicas))
		case diff > 0:
			ranked := slices.Clone(active)
			slices.SortStableFunc(ranked, rank)
			for _, p := range ranked[:min(diff, BurstReplicas)] {
				surplus[p.Name] = true
				deletes = append(deletes, write(controller.Delete, p.DeepCopy(), ReasonDelete))
			}
		}
	}

	// A pod picked for deletion is deleted, not adopted first: one write per
	// object.
	var survivors []*corev1.Pod
	for _, p := range active {
		if surplus[p.Name] {
			continue
		}
		if c, ok := adopted[p.Name]; ok {
			updates = append(updates, write(controller.Update, c, ReasonAdopt))
		}
		survivors = append(survivors, p)
	}
	writes := append(updates, deletes...)
	for _, p := range created {
		writes = append(writes, write(controller.Create, p, ReasonCreate))
	}

	status := computeStatus(env, rs, append(survivors, created...))
	if !apiequality.Semantic.DeepEqual(status, rs.Status) {
		c := rs.DeepCopy()
		c.Status = status
		writes = append(writes, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindReplicaSet, Object: c, Reason: ReasonStatus})
	}
	return writes
}

func write(a controller.Action, p *corev1.Pod, reason string) controller.Write {
	return controller.Write{Action: a, Kind: controller.KindPod, Object: p, Reason: reason}
}

// newPods makes up to n pods from rs's template, with names not taken by any
// pod in pods.
func newPods(env controller.Env, rs *appsv1.ReplicaSet, sel labels.Selector, pods []*corev1.Pod, n int) []*corev1.Pod {
	tmpl := &rs.Spec.Template
	if !sel.Matches(labels.Set(tmpl.Labels)) {
		return nil
	}
	taken := make(map[string]bool, len(pods)+n)
	for _, p := range pods {
		if p.Namespace == rs.Namespace {
			taken[p.Name] = true
		}
	}
	prefix := rs.Name + "-"
	out := make([]*corev1.Pod, 0, n)
	for range n {
		name := ""
		for range nameTries {
			if cand := env.NewName(prefix); !taken[cand] {
				name = cand
				break
			}
		}
		if name == "" {
			break // NewName keeps colliding; the next reconcile tries again
		}
		taken[name] = true
		p := &corev1.Pod{
			TypeMeta: metav1.TypeMeta{Kind: controller.KindPod, APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{
				Name:            name,
				GenerateName:    prefix,
				Namespace:       rs.Namespace,
				Labels:          maps.Clone(tmpl.Labels),
				Annotations:     maps.Clone(tmpl.Annotations),
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, gvk)},
			},
			Spec:   *tmpl.Spec.DeepCopy(),
			Status: corev1.PodStatus{Phase: corev1.PodPending},
		}
		p.Spec.NodeName = "" // the scheduler places it
		out = append(out, p)
	}
	return out
}

// rank orders pods for deletion, most deletable first, as Kubernetes'
// ActivePods does: unscheduled before scheduled, Pending before Unknown
// before Running, not ready before ready, more container restarts first,
// newer first. The name breaks ties so that every replica of the decision
// picks the same pods.
func rank(a, b *corev1.Pod) int {
	if sa, sb := a.Spec.NodeName != "", b.Spec.NodeName != ""; sa != sb {
		return boolCmp(sa, sb)
	}
	if pa, pb := phaseRank(a.Status.Phase), phaseRank(b.Status.Phase); pa != pb {
		return pa - pb
	}
	if ra, rb := controller.IsPodReady(a), controller.IsPodReady(b); ra != rb {
		return boolCmp(ra, rb)
	}
	if ra, rb := controller.MaxRestarts(a), controller.MaxRestarts(b); ra != rb {
		return int(rb - ra)
	}
	if ta, tb := a.CreationTimestamp, b.CreationTimestamp; !ta.Equal(&tb) {
		if tb.Before(&ta) {
			return -1 // a is newer
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

func phaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending, "":
		return 0
	case corev1.PodUnknown:
		return 1
	}
	return 2
}

// boolCmp orders false before true.
func boolCmp(a, b bool) int {
	if a == b {
		return 0
	}
	if !a {
		return -1
	}
	return 1
}

// computeStatus is rs's status counting pods, the active pods the writes
// leave; conditions and fields Shoal does not manage are kept.
func computeStatus(env controller.Env, rs *appsv1.ReplicaSet, pods []*corev1.Pod) appsv1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	tmplLabels := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var full, ready, available int32
	for _, p := range pods {
		if tmplLabels.Matches(labels.Set(p.Labels)) {
			full++
		}
		if controller.IsPodReady(p) {
			ready++
		}
		if controller.IsPodAvailable(p, rs.Spec.MinReadySeconds, env.Now) {
			available++
		}
	}
	st.Replicas = int32(len(pods))
	st.FullyLabeledReplicas = full
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	st.ObservedGeneration = rs.Generation
	return st
}
