package deployment

import (
	"math"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shoal-dev/shoal/agent/controller"
)

// DefaultMaxSurge and DefaultMaxUnavailable are Kubernetes' defaults for a
// RollingUpdate that leaves them out. Shoal stores manifests as written, so
// the controller applies them rather than the API.
var (
	DefaultMaxSurge       = intstr.FromString("25%")
	DefaultMaxUnavailable = intstr.FromString("25%")
)

// DefaultProgressDeadlineSeconds is the progress deadline of a Deployment
// that sets none. A deadline of math.MaxInt32 means none at all, as in
// Kubernetes.
const DefaultProgressDeadlineSeconds = 600

// IsRecreate reports whether d replaces its pods all at once.
func IsRecreate(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType
}

// Fenceposts resolves a rolling update's maxSurge and maxUnavailable against
// desired replicas as Kubernetes does (intstr.GetScaledValueFromIntOrPercent):
// a percentage of surge rounds up, of unavailability down. Nil means the
// default, 25%. When both come to zero, unavailability is 1, since a
// rollout that may neither add nor remove a pod could never progress
// (validation refuses both given as zero; rounding down can still get
// there). A value that does not parse counts as the default: validation
// refuses it before it is stored.
func Fenceposts(surge, unavailable *intstr.IntOrString, desired int32) (int32, int32) {
	s := scaled(surge, DefaultMaxSurge, desired, true)
	u := scaled(unavailable, DefaultMaxUnavailable, desired, false)
	if s == 0 && u == 0 {
		u = 1
	}
	return s, u
}

func scaled(v *intstr.IntOrString, def intstr.IntOrString, desired int32, roundUp bool) int32 {
	if v == nil {
		v = &def
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, int(desired), roundUp)
	if err != nil || n < 0 {
		n, _ = intstr.GetScaledValueFromIntOrPercent(&def, int(desired), roundUp)
	}
	return int32(min(n, math.MaxInt32))
}

// MaxSurge is how many pods d may run above spec.replicas during a rolling
// update; 0 for Recreate.
func MaxSurge(d *appsv1.Deployment) int32 {
	if IsRecreate(d) {
		return 0
	}
	s, _ := fenceposts(d)
	return s
}

// MaxUnavailable is how many of spec.replicas may be unavailable during a
// rolling update, at most spec.replicas; 0 for Recreate or zero replicas.
func MaxUnavailable(d *appsv1.Deployment) int32 {
	want := controller.Replicas(d.Spec.Replicas)
	if IsRecreate(d) || want == 0 {
		return 0
	}
	_, u := fenceposts(d)
	return min(u, want)
}

func fenceposts(d *appsv1.Deployment) (int32, int32) {
	var surge, unavailable *intstr.IntOrString
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		surge, unavailable = ru.MaxSurge, ru.MaxUnavailable
	}
	return Fenceposts(surge, unavailable, controller.Replicas(d.Spec.Replicas))
}

// progressDeadline is d's progress deadline in seconds, and false when it
// has none.
func progressDeadline(d *appsv1.Deployment) (int32, bool) {
	pd := d.Spec.ProgressDeadlineSeconds
	if pd == nil {
		return DefaultProgressDeadlineSeconds, true
	}
	return *pd, *pd != math.MaxInt32
}
