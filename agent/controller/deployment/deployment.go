// Package deployment keeps a Deployment's ReplicaSets in line with it: one
// ReplicaSet per pod template, the current one at spec.replicas, the others
// at zero and pruned to revisionHistoryLimit, and the Deployment's status.
//
// It is a pure function (see package controller for the contract). It writes
// ReplicaSets and the Deployment's status, never pods: the replicaset
// controller makes the pods. Rollout strategies (RollingUpdate with maxSurge
// and maxUnavailable, pause, progress deadline) come later; for now a
// template change is a simple replace: the new set is created at full size
// and the old ones are scaled to zero at once.
package deployment

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/agent/controller"
)

const (
	// RevisionAnnotation numbers a Deployment's ReplicaSets in the order
	// their templates became current (kubectl rollout history reads it).
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// TemplateHashLabel carries TemplateHash on a ReplicaSet, its selector and
	// its pod template, so the sets of one Deployment never select each
	// other's pods.
	TemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey
	// DefaultRevisionHistoryLimit is how many old ReplicaSets are kept when
	// spec.revisionHistoryLimit is nil.
	DefaultRevisionHistoryLimit = 10
)

// Reasons of the writes, and of the Deployment's conditions.
const (
	ReasonCreate       = "ScalingReplicaSet" // as Kubernetes' event for a new set
	ReasonScale        = "ScalingReplicaSet"
	ReasonRevision     = "RevisionUpdated"
	ReasonUpdate       = "ReplicaSetUpdated"
	ReasonAdopt        = "AdoptedReplicaSet"
	ReasonRelease      = "ReleasedReplicaSet"
	ReasonDeleteOld    = "DeletedOldReplicaSet"
	ReasonStatus       = "StatusUpdated"
	ReasonHashConflict = "HashCollision"

	ReasonAvailable     = "MinimumReplicasAvailable"
	ReasonUnavailable   = "MinimumReplicasUnavailable"
	ReasonComplete      = "NewReplicaSetAvailable"
	ReasonProgressing   = "ReplicaSetUpdated"
	messageAvailable    = "Deployment has minimum availability."
	messageUnavailable  = "Deployment does not have minimum availability."
	messageComplete     = "ReplicaSet %q has successfully progressed."
	messageProgressing  = "ReplicaSet %q is progressing."
	messageNoReplicaSet = "Deployment %q is progressing."
)

var (
	gvkDeployment = appsv1.SchemeGroupVersion.WithKind("Deployment")
	gvkReplicaSet = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
)

// set is one ReplicaSet the Deployment owns (or adopts in this pass), with
// the copy this pass edits, if any.
type set struct {
	orig   *appsv1.ReplicaSet
	edit   *appsv1.ReplicaSet // nil while unchanged
	reason string             // of the most telling edit, see reasonRank
}

// reasonRank orders the reasons of edits to one set: a set adopted and
// scaled in one pass is reported as adopted.
var reasonRank = map[string]int{ReasonUpdate: 1, ReasonRevision: 2, ReasonScale: 3, ReasonAdopt: 4}

func (s *set) rs() *appsv1.ReplicaSet {
	if s.edit != nil {
		return s.edit
	}
	return s.orig
}

// change returns the copy to edit, noting why.
func (s *set) change(reason string) *appsv1.ReplicaSet {
	if s.edit == nil {
		s.edit = s.orig.DeepCopy()
	}
	if reasonRank[reason] > reasonRank[s.reason] {
		s.reason = reason
	}
	return s.edit
}

// Reconcile returns the writes that bring d's ReplicaSets in line with its
// spec and its status up to date. sets are the ReplicaSets of d's namespace,
// pods its pods (for the status and to know when an old set is empty).
//
// The current set is the owned one whose template equals d's template, less
// the pod-template-hash label; when there is none, it is created as
// d.Name-TemplateHash. When that name is taken by a set with another
// template, status.collisionCount is raised and the next reconcile tries the
// next name (two passes, as in Kubernetes). Old sets are deleted beyond the
// history limit only once they are at zero replicas, observed so by the
// replicaset controller, with no pod left: deleting a set with pods would
// orphan them. Scaling an old set to zero and deleting it are therefore two
// passes.
//
// A Deployment with an empty or invalid selector, or a template its
// selector does not match, gets no writes; one being deleted gets its status
// only.
func Reconcile(env controller.Env, d *appsv1.Deployment, sets []*appsv1.ReplicaSet, pods []*corev1.Pod) []controller.Write {
	sel, ok := controller.Selector(d.Spec.Selector)
	if !ok || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		// Its sets would select none of their own pods.
		return nil
	}
	claimed := controller.Claim(d, sel, sets)
	var writes []controller.Write
	for _, rs := range claimed.Release {
		c := rs.DeepCopy()
		controller.RemoveOwnerRef(c, d.UID)
		writes = append(writes, rsWrite(controller.Update, c, ReasonRelease))
	}
	var owned []*set
	for _, rs := range claimed.Owned {
		owned = append(owned, &set{orig: rs})
	}
	for _, rs := range claimed.Adopt {
		s := &set{orig: rs}
		controller.SetControllerRef(s.change(ReasonAdopt), d, gvkDeployment)
		owned = append(owned, s)
	}

	current := findCurrent(d, owned)
	var created *appsv1.ReplicaSet
	status := *d.Status.DeepCopy()
	var deleted []*set
	if d.DeletionTimestamp == nil {
		maxOld := int64(0)
		for _, s := range owned {
			if s != current {
				maxOld = max(maxOld, revision(s.orig))
			}
		}
		want := controller.Replicas(d.Spec.Replicas)
		if current == nil {
			hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
			name := d.Name + "-" + hash
			switch taken := byName(sets, d.Namespace, name); {
			case taken == nil:
				created = newReplicaSet(d, hash, maxOld+1, want)
			case taken.DeletionTimestamp != nil && controller.IsControlledBy(taken, d.UID):
				// Our own set with this name is going away; wait for it.
			default:
				// Same name, another template (or another owner): a hash
				// collision. The next pass hashes with the new count.
				status.CollisionCount = ptr(ptrValue(d.Status.CollisionCount) + 1)
			}
		} else {
			if revision(current.orig) <= maxOld {
				rs := current.change(ReasonRevision)
				rs.Annotations = withKey(rs.Annotations, RevisionAnnotation, strconv.FormatInt(maxOld+1, 10))
			}
			if controller.Replicas(current.rs().Spec.Replicas) != want {
				current.change(ReasonScale).Spec.Replicas = ptr(want)
			}
			if current.rs().Spec.MinReadySeconds != d.Spec.MinReadySeconds {
				current.change(ReasonUpdate).Spec.MinReadySeconds = d.Spec.MinReadySeconds
			}
		}
		// Old sets go to zero only once the current set exists or is being
		// created in this pass, so a blocked creation does not leave d with
		// no pods at all.
		if current != nil || created != nil {
			var olds []*set
			for _, s := range owned {
				if s == current || s.orig.DeletionTimestamp != nil {
					continue
				}
				olds = append(olds, s)
				if controller.Replicas(s.rs().Spec.Replicas) != 0 {
					s.change(ReasonScale).Spec.Replicas = ptr(int32(0))
				}
			}
			deleted = prune(d, olds, pods)
		}
	}

	for _, s := range owned {
		if s.edit != nil {
			writes = append(writes, rsWrite(controller.Update, s.edit, s.reason))
		}
	}
	for _, s := range deleted {
		writes = append(writes, rsWrite(controller.Delete, s.orig.DeepCopy(), ReasonDeleteOld))
	}
	if created != nil {
		writes = append(writes, rsWrite(controller.Create, created, ReasonCreate))
	}

	currentName := ""
	var currentUID types.UID
	switch {
	case current != nil:
		currentName, currentUID = current.orig.Name, current.orig.UID
	case created != nil:
		currentName = created.Name // no pods yet: it has no uid
	}
	computeStatus(env, d, &status, owned, currentName, currentUID, pods)
	if !apiequality.Semantic.DeepEqual(status, d.Status) {
		c := d.DeepCopy()
		c.Status = status
		reason := ReasonStatus
		if !apiequality.Semantic.DeepEqual(status.CollisionCount, d.Status.CollisionCount) {
			reason = ReasonHashConflict
		}
		writes = append(writes, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindDeployment, Object: c, Reason: reason})
	}
	return writes
}

// findCurrent returns the owned set, not being deleted, whose template is
// d's template; when several are, the one named by the hash, else the oldest
// (the others are then old sets and go to zero).
func findCurrent(d *appsv1.Deployment, owned []*set) *set {
	name := d.Name + "-" + TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	var best *set
	for _, s := range owned {
		if s.orig.DeletionTimestamp != nil || !sameTemplate(&s.orig.Spec.Template, &d.Spec.Template) {
			continue
		}
		if s.orig.Name == name {
			return s
		}
		if best == nil || older(s.orig, best.orig) {
			best = s
		}
	}
	return best
}

// sameTemplate compares a set's template with the Deployment's, ignoring the
// pod-template-hash label the set carries. Nil and empty maps and slices are
// equal, so a round trip through JSON does not make a template new.
func sameTemplate(rsTmpl, dTmpl *corev1.PodTemplateSpec) bool {
	t := rsTmpl.DeepCopy()
	delete(t.Labels, TemplateHashLabel)
	return apiequality.Semantic.DeepEqual(t, dTmpl)
}

func older(a, b *appsv1.ReplicaSet) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// prune picks the old sets to delete beyond d's revision history limit,
// oldest revision first, skipping any that are not yet empty.
func prune(d *appsv1.Deployment, olds []*set, pods []*corev1.Pod) []*set {
	limit := int32(DefaultRevisionHistoryLimit)
	if d.Spec.RevisionHistoryLimit != nil {
		limit = max(*d.Spec.RevisionHistoryLimit, 0)
	}
	excess := len(olds) - int(limit)
	if excess <= 0 {
		return nil
	}
	olds = slices.Clone(olds)
	slices.SortStableFunc(olds, func(a, b *set) int {
		if c := cmp.Compare(revision(a.orig), revision(b.orig)); c != 0 {
			return c
		}
		if older(a.orig, b.orig) {
			return -1
		}
		if older(b.orig, a.orig) {
			return 1
		}
		return 0
	})
	// Only the excess oldest are candidates, as in Kubernetes: a stuck old
	// set delays the pruning, it does not cost a newer revision its place.
	var out []*set
	for _, s := range olds[:excess] {
		if empty(s, pods) {
			out = append(out, s)
		}
	}
	return out
}

// empty reports whether an old set may be deleted now: it needs no write in
// this pass (one write per object), it is at zero replicas in the stored
// spec and the replicaset controller has seen that, and no pod, running or
// finished, names it as controller.
func empty(s *set, pods []*corev1.Pod) bool {
	rs := s.orig
	if s.edit != nil || controller.Replicas(rs.Spec.Replicas) != 0 || rs.Status.Replicas != 0 ||
		rs.Status.ObservedGeneration < rs.Generation {
		return false
	}
	for _, p := range pods {
		if controller.IsControlledBy(p, rs.UID) {
			return false
		}
	}
	return true
}

// newReplicaSet is the set for d's current template.
func newReplicaSet(d *appsv1.Deployment, hash string, rev int64, replicas int32) *appsv1.ReplicaSet {
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = withKey(tmpl.Labels, TemplateHashLabel, hash)
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels = withKey(sel.MatchLabels, TemplateHashLabel, hash)
	return &appsv1.ReplicaSet{
		TypeMeta: metav1.TypeMeta{Kind: controller.KindReplicaSet, APIVersion: "apps/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          withKey(d.Spec.Template.Labels, TemplateHashLabel, hash),
			Annotations:     map[string]string{RevisionAnnotation: strconv.FormatInt(rev, 10)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, gvkDeployment)},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr(replicas),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        sel,
			Template:        *tmpl,
		},
	}
}

// computeStatus fills st from the pods of the sets d will own after this
// pass. currentUID is empty when the current set is yet to be created.
func computeStatus(env controller.Env, d *appsv1.Deployment, st *appsv1.DeploymentStatus, owned []*set, currentName string, currentUID types.UID, pods []*corev1.Pod) {
	uids := make(map[types.UID]bool, len(owned))
	for _, s := range owned {
		uids[s.orig.UID] = true
	}
	var replicas, updated, ready, available int32
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if p.Namespace != d.Namespace || ref == nil || !uids[ref.UID] || !controller.IsPodActive(p) {
			continue
		}
		replicas++
		if currentUID != "" && ref.UID == currentUID {
			updated++
		}
		if controller.IsPodReady(p) {
			ready++
		}
		if controller.IsPodAvailable(p, d.Spec.MinReadySeconds, env.Now) {
			available++
		}
	}
	want := controller.Replicas(d.Spec.Replicas)
	st.ObservedGeneration = d.Generation
	st.Replicas = replicas
	st.UpdatedReplicas = updated
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	st.UnavailableReplicas = max(want-available, 0)

	now := env.Time()
	avail := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: ReasonAvailable, Message: messageAvailable}
	if available < want {
		avail.Status, avail.Reason, avail.Message = corev1.ConditionFalse, ReasonUnavailable, messageUnavailable
	}
	prog := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue}
	switch {
	case currentName == "":
		prog.Reason, prog.Message = ReasonProgressing, fmt.Sprintf(messageNoReplicaSet, d.Name)
	case updated == want && replicas == want && available == want:
		prog.Reason, prog.Message = ReasonComplete, fmt.Sprintf(messageComplete, currentName)
	default:
		prog.Reason, prog.Message = ReasonProgressing, fmt.Sprintf(messageProgressing, currentName)
	}
	st.Conditions = setCondition(st.Conditions, avail, now)
	st.Conditions = setCondition(st.Conditions, prog, now)
}

// setCondition puts c into conds. When a condition of c's type already has
// c's status and reason, its timestamps are kept (only the message may
// change), so a reconcile does not rewrite the status just because time
// passed; lastTransitionTime moves only when the status does.
func setCondition(conds []appsv1.DeploymentCondition, c appsv1.DeploymentCondition, now metav1.Time) []appsv1.DeploymentCondition {
	for i := range conds {
		old := &conds[i]
		if old.Type != c.Type {
			continue
		}
		switch {
		case old.Status == c.Status && old.Reason == c.Reason:
			c.LastUpdateTime, c.LastTransitionTime = old.LastUpdateTime, old.LastTransitionTime
		case old.Status == c.Status:
			c.LastUpdateTime, c.LastTransitionTime = now, old.LastTransitionTime
		default:
			c.LastUpdateTime, c.LastTransitionTime = now, now
		}
		*old = c
		return conds
	}
	c.LastUpdateTime, c.LastTransitionTime = now, now
	return append(conds, c)
}

func rsWrite(a controller.Action, rs *appsv1.ReplicaSet, reason string) controller.Write {
	return controller.Write{Action: a, Kind: controller.KindReplicaSet, Object: rs, Reason: reason}
}

// revision is the set's revision annotation; 0 when missing or not a number.
func revision(rs *appsv1.ReplicaSet) int64 {
	n, err := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func byName(sets []*appsv1.ReplicaSet, namespace, name string) *appsv1.ReplicaSet {
	for _, rs := range sets {
		if rs.Namespace == namespace && rs.Name == name {
			return rs
		}
	}
	return nil
}

// withKey returns a copy of m with k set to v.
func withKey(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}

func ptr[T any](v T) *T { return &v }

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
