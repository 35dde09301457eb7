package deployment

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// computeStatus fills p.status: the counts from the pods of the sets d owns,
// and the Available and Progressing conditions, as Kubernetes'
// calculateStatus, checkPausedConditions and syncRolloutStatus do.
func (p *pass) computeStatus() {
	d, st := p.d, &p.status
	var replicas, updated, ready, available, total int32
	for _, s := range p.owned {
		replicas += s.pods.active
		ready += s.pods.ready
		available += s.pods.available
		if s.orig.DeletionTimestamp == nil {
			total += s.spec()
		}
	}
	if p.current != nil {
		updated = p.current.pods.active
	}
	st.ObservedGeneration = d.Generation
	st.Replicas = replicas
	st.UpdatedReplicas = updated
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	// As Kubernetes counts it: the pods the sets ask for that are not
	// available, so a surge pod that is not yet ready counts.
	st.UnavailableReplicas = max(total-available, 0)

	now := p.env.Time()
	avail := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: ReasonAvailable, Message: messageAvailable}
	if available < p.want-MaxUnavailable(d) {
		avail.Status, avail.Reason, avail.Message = corev1.ConditionFalse, ReasonUnavailable, messageUnavailable
	}
	st.Conditions = setCondition(st.Conditions, avail, now)

	deadline, hasDeadline := progressDeadline(d)
	if !hasDeadline {
		st.Conditions = removeCondition(st.Conditions, appsv1.DeploymentProgressing)
		return
	}
	name := ""
	if p.current != nil {
		name = p.current.rs().Name
	}
	cond := getCondition(st.Conditions, appsv1.DeploymentProgressing)
	if cond == nil || cond.Reason != ReasonTimedOut {
		// A paused rollout does not time out; resuming starts the clock
		// again. A rollout that already timed out says so, paused or not.
		pausedCond := cond != nil && cond.Reason == ReasonPaused
		switch {
		case d.Spec.Paused && !pausedCond:
			st.Conditions = setCondition(st.Conditions, progressing(corev1.ConditionUnknown, ReasonPaused, messagePaused), now)
		case !d.Spec.Paused && pausedCond:
			st.Conditions = setCondition(st.Conditions, progressing(corev1.ConditionUnknown, ReasonResumed, messageResumed), now)
		}
	}
	if d.Spec.Paused || d.DeletionTimestamp != nil {
		return
	}
	switch cond := getCondition(st.Conditions, appsv1.DeploymentProgressing); {
	case p.current != nil && p.current.created:
		// A creation is progress, even after another creation.
		st.Conditions = setProgress(st.Conditions, progressing(corev1.ConditionTrue, ReasonCreated, fmt.Sprintf(messageCreated, name)), now)
	case p.current != nil && cond == nil:
		// A Deployment that had no deadline before: the clock starts now.
		st.Conditions = setCondition(st.Conditions, progressing(corev1.ConditionTrue, ReasonFound, fmt.Sprintf(messageFound, name)), now)
	}

	cond = getCondition(st.Conditions, appsv1.DeploymentProgressing)
	if st.Replicas == st.UpdatedReplicas && cond != nil && cond.Reason == ReasonComplete {
		return // the last rollout is complete; a scale is not a rollout
	}
	switch {
	case p.complete():
		st.Conditions = setCondition(st.Conditions, progressing(corev1.ConditionTrue, ReasonComplete, p.message(messageComplete, messageNoSetComplete, name)), now)
	case progressed(&d.Status, st):
		// Progress moves lastUpdateTime, which the deadline counts from.
		st.Conditions = setProgress(st.Conditions, progressing(corev1.ConditionTrue, ReasonProgressing, p.message(messageProgressing, messageNoSetProgressing, name)), now)
	case timedOut(cond, deadline, p.env.Now):
		st.Conditions = setCondition(st.Conditions, progressing(corev1.ConditionFalse, ReasonTimedOut, p.message(messageTimedOut, messageNoSetTimedOut, name)), now)
	}
}

func (p *pass) message(withSet, withoutSet, name string) string {
	if name == "" {
		return fmt.Sprintf(withoutSet, p.d.Name)
	}
	return fmt.Sprintf(withSet, name)
}

// complete reports whether every wanted pod is updated and available, and
// no other pod is left (Kubernetes' DeploymentComplete).
func (p *pass) complete() bool {
	st := &p.status
	return st.UpdatedReplicas == p.want && st.Replicas == p.want && st.AvailableReplicas == p.want &&
		st.ObservedGeneration >= p.d.Generation
}

// progressed reports whether the counts moved toward the end of a rollout
// since the last status (Kubernetes' DeploymentProgressing).
func progressed(old, cur *appsv1.DeploymentStatus) bool {
	return cur.UpdatedReplicas > old.UpdatedReplicas ||
		cur.Replicas-cur.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		cur.ReadyReplicas > old.ReadyReplicas ||
		cur.AvailableReplicas > old.AvailableReplicas
}

// timedOut reports whether the Progressing condition has not moved for the
// deadline (Kubernetes' DeploymentTimedOut). A complete rollout never times
// out, one that did stays timed out until it progresses again.
func timedOut(cond *appsv1.DeploymentCondition, deadline int32, now time.Time) bool {
	switch {
	case cond == nil || cond.Reason == ReasonComplete:
		return false
	case cond.Reason == ReasonTimedOut:
		return true
	}
	return cond.LastUpdateTime.Add(time.Duration(deadline) * time.Second).Before(now)
}

func progressing(status corev1.ConditionStatus, reason, msg string) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: status, Reason: reason, Message: msg}
}

func getCondition(conds []appsv1.DeploymentCondition, typ appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

func removeCondition(conds []appsv1.DeploymentCondition, typ appsv1.DeploymentConditionType) []appsv1.DeploymentCondition {
	var out []appsv1.DeploymentCondition
	for _, c := range conds {
		if c.Type != typ {
			out = append(out, c)
		}
	}
	return out
}

// setProgress puts c into conds with lastUpdateTime now: progress was made.
// lastTransitionTime moves only when the status does.
func setProgress(conds []appsv1.DeploymentCondition, c appsv1.DeploymentCondition, now metav1.Time) []appsv1.DeploymentCondition {
	c.LastUpdateTime, c.LastTransitionTime = now, now
	if old := getCondition(conds, c.Type); old != nil {
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		*old = c
		return conds
	}
	return append(conds, c)
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
