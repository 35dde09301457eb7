// Package deployment keeps a Deployment's ReplicaSets in line with it, as
// Kubernetes' deployment controller does: one ReplicaSet per pod template,
// numbered by the revision annotation, the current one brought to
// spec.replicas by the Deployment's strategy, the others scaled to zero and
// pruned to revisionHistoryLimit, and the Deployment's status with its
// Available and Progressing conditions.
//
// Strategies: RollingUpdate scales the current set up and the old ones down
// in steps, keeping at most spec.replicas+maxSurge pods and at least
// spec.replicas-maxUnavailable available ones (ready for minReadySeconds);
// Recreate scales the old sets to zero, waits until none of their pods is
// left, then scales the current set up. A paused Deployment does not roll:
// a new template gets no ReplicaSet until it is resumed. A rollout that
// makes no progress for progressDeadlineSeconds is marked
// ProgressDeadlineExceeded (and keeps trying, as in Kubernetes). A
// rollback is a template change back to an old revision's template: that
// set becomes current again under a new, higher revision.
//
// It is a pure function (see package controller for the contract). It writes
// ReplicaSets and the Deployment (its revision annotation, its status),
// never pods: the replicaset controller makes the pods. Availability is
// judged from the pods and Env.Now, so a pod that becomes available with no
// write happening is seen at the runner's next periodic reconcile.
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
	// their templates became current (rollout history reads it); the
	// Deployment carries its current set's number too.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// ChangeCauseAnnotation says why a revision was made; it is copied from
	// the Deployment to its current ReplicaSet with the other annotations.
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	// TemplateHashLabel carries TemplateHash on a ReplicaSet, its selector and
	// its pod template, so the sets of one Deployment never select each
	// other's pods.
	TemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey
	// DefaultRevisionHistoryLimit is how many old ReplicaSets are kept when
	// spec.revisionHistoryLimit is nil.
	DefaultRevisionHistoryLimit = 10
)

// skipAnnotations are the Deployment annotations not copied to its
// ReplicaSets, as in Kubernetes.
var skipAnnotations = map[string]bool{
	"kubectl.kubernetes.io/last-applied-configuration": true,
	RevisionAnnotation:                          true,
	"deployment.kubernetes.io/revision-history": true,
	"deployment.kubernetes.io/desired-replicas": true,
	"deployment.kubernetes.io/max-replicas":     true,
	"deprecated.deployment.rollback.to":         true,
}

// Reasons of the writes, and of the Deployment's conditions (Kubernetes'
// names).
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

	ReasonAvailable   = "MinimumReplicasAvailable"
	ReasonUnavailable = "MinimumReplicasUnavailable"
	ReasonCreated     = "NewReplicaSetCreated"
	ReasonFound       = "FoundNewReplicaSet"
	ReasonProgressing = "ReplicaSetUpdated"
	ReasonComplete    = "NewReplicaSetAvailable"
	ReasonTimedOut    = "ProgressDeadlineExceeded"
	ReasonPaused      = "DeploymentPaused"
	ReasonResumed     = "DeploymentResumed"

	messageAvailable   = "Deployment has minimum availability."
	messageUnavailable = "Deployment does not have minimum availability."
	messageCreated     = "Created new replica set %q"
	messageFound       = "Found new replica set %q"
	messageComplete    = "ReplicaSet %q has successfully progressed."
	messageProgressing = "ReplicaSet %q is progressing."
	messageTimedOut    = "ReplicaSet %q has timed out progressing."
	messagePaused      = "Deployment is paused"
	messageResumed     = "Deployment is resumed"
	// Without a current set, the Deployment is named instead.
	messageNoSetComplete    = "Deployment %q has successfully progressed."
	messageNoSetProgressing = "Deployment %q is progressing."
	messageNoSetTimedOut    = "Deployment %q has timed out progressing."
)

var (
	gvkDeployment = appsv1.SchemeGroupVersion.WithKind("Deployment")
	gvkReplicaSet = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
)

// set is one ReplicaSet the Deployment owns (or adopts or creates in this
// pass), with the copy this pass edits, if any, and its pods.
type set struct {
	orig    *appsv1.ReplicaSet
	edit    *appsv1.ReplicaSet // nil while unchanged; for a created set, orig itself
	reason  string             // of the most telling edit, see reasonRank
	created bool               // made in this pass: a Create, with no pods yet
	pods    podCounts
}

// podCounts are a set's active pods (neither finished nor being deleted),
// and how many of those are ready and available; live counts every pod not
// finished, for Recreate's wait.
type podCounts struct{ active, ready, available, live int32 }

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

// spec is the set's spec.replicas as this pass leaves it.
func (s *set) spec() int32 { return controller.Replicas(s.rs().Spec.Replicas) }

// size is what the set counts against maxSurge: its spec, or its pods while
// a scale-down has not yet removed them.
func (s *set) size() int32 { return max(s.spec(), s.pods.active) }

// avail is what the set counts toward minimum availability: its available
// pods, but no more than its spec, since the replicaset controller is about
// to delete the surplus (and may pick available pods).
func (s *set) avail() int32 { return min(s.pods.available, s.spec()) }

// scaleMessage is the event of a write that changes the set's size, as
// Kubernetes words it; "" when the size does not change.
func (s *set) scaleMessage() string {
	from, to := controller.Replicas(s.orig.Spec.Replicas), s.spec()
	if s.created {
		from = 0
	}
	switch {
	case to > from:
		return fmt.Sprintf("Scaled up replica set %s to %d", s.rs().Name, to)
	case to < from:
		return fmt.Sprintf("Scaled down replica set %s to %d", s.rs().Name, to)
	}
	return ""
}

// pass is one reconcile of one Deployment.
type pass struct {
	env     controller.Env
	d       *appsv1.Deployment
	want    int32
	owned   []*set // not released; includes sets being deleted and the created one
	current *set   // the set of d's template, nil when there is none yet
	status  appsv1.DeploymentStatus
}

// Reconcile returns the writes that bring d's ReplicaSets in line with its
// spec and strategy, and d's revision annotation and status up to date.
// sets are the ReplicaSets of d's namespace, pods its pods (to judge
// availability, and to know when an old set is empty).
//
// The current set is the owned one whose template equals d's template, less
// the pod-template-hash label; when there is none, it is created as
// d.Name-TemplateHash. When that name is taken by a set with another
// template, status.collisionCount is raised and the next reconcile tries the
// next name (two passes, as in Kubernetes).
//
// One pass takes one step of the strategy, as Kubernetes' controller does in
// one sync: a RollingUpdate either scales the current set up (as far as
// maxSurge allows) or scales old sets down (as far as maxUnavailable
// allows); the writes of the step commit, the replicaset controller acts on
// them, and the next pass takes the next step from what it then observes.
// Sizes count a set's pods as well as its spec while they differ, so a step
// never relies on a scale-down the replicaset controller has not yet carried
// out. Scaling the current set up is a step on its own; creating it is not,
// so a new set may be created and old ones scaled down in one pass.
//
// Old sets are deleted beyond the history limit only once they are at zero
// replicas, observed so by the replicaset controller, with no pod left:
// deleting a set with pods would orphan them.
//
// The Deployment's revision annotation follows its current set. A write of
// it is an Update, so the status waits for the next pass (one write per
// object). Passes that need a second pass: a hash collision; a new
// current set (its creation with the status, then the annotation, then the
// status); a rollback (the annotation, then the status).
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
	p := &pass{env: env, d: d, want: controller.Replicas(d.Spec.Replicas), status: *d.Status.DeepCopy()}
	for _, rs := range claimed.Owned {
		p.owned = append(p.owned, &set{orig: rs})
	}
	for _, rs := range claimed.Adopt {
		s := &set{orig: rs}
		controller.SetControllerRef(s.change(ReasonAdopt), d, gvkDeployment)
		p.owned = append(p.owned, s)
	}
	p.countPods(pods)
	p.current = findCurrent(d, p.owned)

	var deleted []*set
	if d.DeletionTimestamp == nil {
		if p.current != nil {
			p.syncCurrent()
		}
		switch {
		case d.Spec.Paused:
			p.scalePaused()
		case IsRecreate(d):
			p.recreate(sets)
		default:
			p.rolling(sets)
		}
		// Pruning waits for a current set, so that a blocked creation never
		// costs d the history it could roll back to.
		if p.current != nil {
			deleted = prune(d, p.olds(), pods)
		}
	}

	// A created set goes first, so its event precedes those of the old
	// sets scaled down in the same pass.
	for _, s := range p.owned {
		if s.created {
			w := rsWrite(controller.Create, s.rs(), ReasonCreate)
			w.Message = s.scaleMessage()
			writes = append(writes, w)
		}
	}
	for _, s := range p.owned {
		if !s.created && s.edit != nil {
			w := rsWrite(controller.Update, s.edit, s.reason)
			w.Message = s.scaleMessage()
			writes = append(writes, w)
		}
	}
	for _, s := range deleted {
		writes = append(writes, rsWrite(controller.Delete, s.orig.DeepCopy(), ReasonDeleteOld))
	}

	if w, ok := p.revisionWrite(); ok {
		return append(writes, w)
	}
	p.computeStatus()
	if !apiequality.Semantic.DeepEqual(p.status, d.Status) {
		c := d.DeepCopy()
		c.Status = p.status
		reason := ReasonStatus
		if !apiequality.Semantic.DeepEqual(p.status.CollisionCount, d.Status.CollisionCount) {
			reason = ReasonHashConflict
		}
		writes = append(writes, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindDeployment, Object: c, Reason: reason})
	}
	return writes
}

// countPods fills each owned set's pod counts.
func (p *pass) countPods(pods []*corev1.Pod) {
	byUID := make(map[types.UID]*set, len(p.owned))
	for _, s := range p.owned {
		byUID[s.orig.UID] = s
	}
	for _, pod := range pods {
		ref := metav1.GetControllerOfNoCopy(pod)
		if pod.Namespace != p.d.Namespace || ref == nil {
			continue
		}
		s := byUID[ref.UID]
		if s == nil || controller.IsPodTerminal(pod) {
			continue
		}
		s.pods.live++
		if !controller.IsPodActive(pod) {
			continue
		}
		s.pods.active++
		if controller.IsPodReady(pod) {
			s.pods.ready++
		}
		if controller.IsPodAvailable(pod, p.d.Spec.MinReadySeconds, p.env.Now) {
			s.pods.available++
		}
	}
}

// maxOldRevision is the highest revision of the owned sets other than the
// current one.
func (p *pass) maxOldRevision() int64 {
	maxOld := int64(0)
	for _, s := range p.owned {
		if s != p.current {
			maxOld = max(maxOld, revision(s.orig))
		}
	}
	return maxOld
}

// syncCurrent gives the current set the next revision when an old set has a
// higher one (a rollback), d's annotations and d's minReadySeconds.
func (p *pass) syncCurrent() {
	cur := p.current
	if maxOld := p.maxOldRevision(); revision(cur.orig) <= maxOld {
		rs := cur.change(ReasonRevision)
		rs.Annotations = withKey(rs.Annotations, RevisionAnnotation, strconv.FormatInt(maxOld+1, 10))
	}
	for _, k := range sortedKeys(p.d.Annotations) {
		if v, ok := cur.rs().Annotations[k]; !skipAnnotations[k] && (!ok || v != p.d.Annotations[k]) {
			rs := cur.change(ReasonUpdate)
			rs.Annotations = withKey(rs.Annotations, k, p.d.Annotations[k])
		}
	}
	if cur.rs().Spec.MinReadySeconds != p.d.Spec.MinReadySeconds {
		cur.change(ReasonUpdate).Spec.MinReadySeconds = p.d.Spec.MinReadySeconds
	}
}

// create makes the current set, of replicas pods, unless its name is taken.
func (p *pass) create(sets []*appsv1.ReplicaSet, replicas int32) bool {
	d := p.d
	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	name := d.Name + "-" + hash
	switch taken := byName(sets, d.Namespace, name); {
	case taken == nil:
		rs := newReplicaSet(d, hash, p.maxOldRevision()+1, replicas)
		s := &set{orig: rs, edit: rs, created: true, reason: ReasonCreate}
		p.owned = append(p.owned, s)
		p.current = s
		return true
	case taken.DeletionTimestamp != nil && controller.IsControlledBy(taken, d.UID):
		// Our own set with this name is going away; wait for it.
	default:
		// Same name, another template (or another owner): a hash
		// collision. The next pass hashes with the new count.
		p.status.CollisionCount = ptr(ptrValue(d.Status.CollisionCount) + 1)
	}
	return false
}

// olds are the owned sets, not being deleted, other than the current one,
// oldest first.
func (p *pass) olds() []*set {
	var out []*set
	for _, s := range p.owned {
		if s != p.current && s.orig.DeletionTimestamp == nil {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b *set) int {
		switch {
		case older(a.orig, b.orig):
			return -1
		case older(b.orig, a.orig):
			return 1
		}
		return 0
	})
	return out
}

// scale sets s to n replicas; it reports whether that changed anything.
func (p *pass) scale(s *set, n int32) bool {
	if s.spec() == n {
		return false
	}
	s.change(ReasonScale).Spec.Replicas = ptr(n)
	return true
}

// rolling takes one step of a RollingUpdate (Kubernetes' rolloutRolling).
func (p *pass) rolling(sets []*appsv1.ReplicaSet) {
	if p.current == nil && !p.create(sets, p.newSetTarget()) {
		return
	}
	cur := p.current
	switch spec := cur.spec(); {
	case spec > p.want:
		p.scale(cur, p.want)
		return
	case spec < p.want:
		if p.scale(cur, p.newSetTarget()) {
			return
		}
	}
	p.scaleDownOld()
}

// newSetTarget is the size the current set (nil: the one to create) may grow
// to now: up to spec.replicas, while all sets together stay within
// spec.replicas+maxSurge.
func (p *pass) newSetTarget() int32 {
	var curSpec, total int32
	for _, s := range p.owned {
		total += s.size()
	}
	if p.current != nil {
		curSpec = p.current.spec()
	}
	maxTotal := p.want + MaxSurge(p.d)
	if total >= maxTotal {
		return curSpec
	}
	return curSpec + max(min(maxTotal-total, p.want-curSpec), 0)
}

// scaleDownOld scales old sets down as far as minimum availability allows:
// first their unavailable pods, which cost nothing, then available ones
// beyond spec.replicas-maxUnavailable, oldest set first (Kubernetes'
// reconcileOldReplicaSets).
func (p *pass) scaleDownOld() {
	var olds []*set
	var oldTotal int32
	for _, s := range p.olds() {
		if s.spec() > 0 {
			olds = append(olds, s)
			oldTotal += s.spec()
		}
	}
	if oldTotal == 0 {
		return
	}
	cur := p.current
	allTotal := oldTotal + cur.spec()
	minAvailable := p.want - MaxUnavailable(p.d)
	newUnavailable := cur.spec() - cur.avail()
	maxScaledDown := allTotal - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return
	}
	// Unavailable pods of old sets go first: removing them does not lower
	// availability, and they could otherwise block the rollout.
	var cleaned int32
	for _, s := range olds {
		if cleaned >= maxScaledDown {
			break
		}
		if unhealthy := s.spec() - s.avail(); unhealthy > 0 {
			n := min(maxScaledDown-cleaned, unhealthy)
			p.scale(s, s.spec()-n)
			cleaned += n
		}
	}
	available := cur.avail()
	for _, s := range olds {
		available += s.avail()
	}
	if available <= minAvailable {
		return
	}
	toScale := available - minAvailable
	var scaled int32
	for _, s := range olds {
		if scaled >= toScale {
			break
		}
		if s.spec() == 0 {
			continue
		}
		n := min(s.spec(), toScale-scaled)
		p.scale(s, s.spec()-n)
		scaled += n
	}
}

// recreate takes one step of a Recreate rollout: old sets to zero, then,
// once no pod of theirs is left (finished ones aside), the current set to
// spec.replicas (Kubernetes' rolloutRecreate).
func (p *pass) recreate(sets []*appsv1.ReplicaSet) {
	scaled := false
	for _, s := range p.olds() {
		if p.scale(s, 0) {
			scaled = true
		}
	}
	if scaled || p.oldPodsLeft() {
		return
	}
	if p.current == nil {
		p.create(sets, p.want)
		return
	}
	p.scale(p.current, p.want)
}

// oldPodsLeft reports whether a set other than the current one still has a
// pod that is not finished, or reports one in its status.
func (p *pass) oldPodsLeft() bool {
	for _, s := range p.owned {
		if s != p.current && (s.pods.live > 0 || s.orig.Status.Replicas > 0) {
			return true
		}
	}
	return false
}

// scalePaused is all a paused Deployment does (Kubernetes' sync and scale,
// without proportional scaling): with one active set, or none, that set (or
// the newest) follows spec.replicas; with several, old sets go to zero once
// the current set is saturated, and sizes are otherwise left as they are
// until the rollout resumes.
func (p *pass) scalePaused() {
	var active []*set
	for _, s := range p.owned {
		if s.orig.DeletionTimestamp == nil && s.spec() > 0 {
			active = append(active, s)
		}
	}
	switch len(active) {
	case 0:
		latest := p.current
		if olds := p.olds(); latest == nil && len(olds) > 0 {
			latest = olds[len(olds)-1]
		}
		if latest != nil {
			p.scale(latest, p.want)
		}
	case 1:
		p.scale(active[0], p.want)
	default:
		if cur := p.current; cur != nil && cur.spec() == p.want && cur.pods.available >= p.want {
			for _, s := range p.olds() {
				p.scale(s, 0)
			}
		}
	}
}

// revisionWrite is the Update that sets d's revision annotation to its
// current set's, when they differ and the set was not just created (its
// creation writes the status first).
func (p *pass) revisionWrite() (controller.Write, bool) {
	cur := p.current
	if p.d.DeletionTimestamp != nil || cur == nil || cur.created {
		return controller.Write{}, false
	}
	rev := strconv.FormatInt(revision(cur.rs()), 10)
	if v, ok := p.d.Annotations[RevisionAnnotation]; ok && v == rev {
		return controller.Write{}, false
	}
	c := p.d.DeepCopy()
	c.Annotations = withKey(c.Annotations, RevisionAnnotation, rev)
	return controller.Write{Action: controller.Update, Kind: controller.KindDeployment, Object: c, Reason: ReasonRevision}, true
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

// newReplicaSet is the set for d's current template, with d's annotations
// (change-cause among them) but those of skipAnnotations.
func newReplicaSet(d *appsv1.Deployment, hash string, rev int64, replicas int32) *appsv1.ReplicaSet {
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = withKey(tmpl.Labels, TemplateHashLabel, hash)
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels = withKey(sel.MatchLabels, TemplateHashLabel, hash)
	ann := map[string]string{RevisionAnnotation: strconv.FormatInt(rev, 10)}
	for k, v := range d.Annotations {
		if !skipAnnotations[k] {
			ann[k] = v
		}
	}
	return &appsv1.ReplicaSet{
		TypeMeta: metav1.TypeMeta{Kind: controller.KindReplicaSet, APIVersion: "apps/v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          withKey(d.Spec.Template.Labels, TemplateHashLabel, hash),
			Annotations:     ann,
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

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
