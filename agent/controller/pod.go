package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// IsPodTerminal reports whether the pod has finished for good (Succeeded or
// Failed); its containers will not run again.
func IsPodTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// IsPodActive reports whether the pod counts toward a controller's replicas:
// not terminal and not being deleted.
func IsPodActive(p *corev1.Pod) bool {
	return !IsPodTerminal(p) && p.DeletionTimestamp == nil
}

// PodReadyCondition returns the pod's Ready condition, or nil.
func PodReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(p *corev1.Pod) bool {
	c := PodReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsPodAvailable reports whether the pod has been ready for at least
// minReadySeconds at now, judged by the Ready condition's lastTransitionTime.
// A ready pod with no transition time is available only when minReadySeconds
// is 0.
func IsPodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := PodReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds <= 0 {
		return true
	}
	if c.LastTransitionTime.IsZero() {
		return false
	}
	return !now.Before(c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second))
}

// MaxRestarts is the highest restart count among the pod's containers.
func MaxRestarts(p *corev1.Pod) int32 {
	var m int32
	for _, cs := range p.Status.ContainerStatuses {
		m = max(m, cs.RestartCount)
	}
	return m
}
