package hpa

import (
	"math"
	"slices"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// Conditions' reasons and messages when the recommendation is stabilized
// or limited, as Kubernetes words them.
const (
	msgReady         = "recommended size matches current size"
	msgDownStable    = "recent recommendations were higher than current one, applying the highest recent recommendation"
	msgUpStable      = "recent recommendations were lower than current one, applying the lowest recent recommendation"
	msgWithinRange   = "the desired count is within the acceptable range"
	msgTooMany       = "the desired replica count is more than the maximum replica count"
	msgTooFew        = "the desired replica count is less than the minimum replica count"
	msgScaleUpRate   = "the desired replica count is increasing faster than the maximum scale rate"
	msgScaleDownRate = "the desired replica count is decreasing faster than the maximum scale rate"
)

// normalize stabilizes and limits the desired replicas of an HPA without
// behavior, as Kubernetes' normalizeDesiredReplicas: the highest
// recommendation of the scale-down window, then at most max(2*current, 4)
// and within minReplicas and maxReplicas.
func (r *reconcile) normalize(current, desired, minReplicas, maxReplicas int32) int32 {
	window := r.cfg.DownscaleStabilization
	stabilized := desired
	for _, rec := range r.mem.Recommendations {
		if rec.At.After(r.now.Add(-window)) {
			stabilized = max(stabilized, rec.Replicas)
		}
	}
	r.remember(desired, window)
	if stabilized != desired {
		r.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleDownStabilized", msgDownStable)
	} else {
		r.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", msgReady)
	}

	upLimit := int32(min(max(2*int64(current), 4), math.MaxInt32))
	maxAllowed, reason, msg := maxReplicas, "TooManyReplicas", msgTooMany
	if maxReplicas > upLimit {
		maxAllowed, reason, msg = upLimit, "ScaleUpLimit", msgScaleUpRate
	}
	out := stabilized
	switch {
	case stabilized < minReplicas:
		out, reason, msg = minReplicas, "TooFewReplicas", msgTooFew
	case stabilized > maxAllowed:
		out = maxAllowed
	default:
		reason, msg = "DesiredWithinRange", msgWithinRange
	}
	r.setLimited(out != stabilized, reason, msg)
	return out
}

// normalizeWithBehavior stabilizes and limits the desired replicas by the
// HPA's behavior, as Kubernetes' normalizeDesiredReplicasWithBehaviors.
func (r *reconcile) normalizeWithBehavior(current, desired, minReplicas, maxReplicas int32) int32 {
	up, down := r.rules()
	upWindow := time.Duration(*up.StabilizationWindowSeconds) * time.Second
	downWindow := time.Duration(*down.StabilizationWindowSeconds) * time.Second

	// Hold the recommendation between the lowest of the scale-up window and
	// the highest of the scale-down window, moving from current.
	upRec, downRec := desired, desired
	for _, rec := range r.mem.Recommendations {
		if rec.At.After(r.now.Add(-upWindow)) {
			upRec = min(upRec, rec.Replicas)
		}
		if rec.At.After(r.now.Add(-downWindow)) {
			downRec = max(downRec, rec.Replicas)
		}
	}
	r.remember(desired, max(upWindow, downWindow))
	stabilized := min(max(current, upRec), downRec)
	switch {
	case stabilized == desired:
		r.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", msgReady)
	case desired >= current:
		r.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleUpStabilized", msgUpStable)
	default:
		r.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleDownStabilized", msgDownStable)
	}

	out, reason, msg := stabilized, "DesiredWithinRange", msgWithinRange
	switch {
	case stabilized > current:
		limit := max(r.upLimit(current, up), current) // no further up until old events age out
		maxAllowed := maxReplicas
		reason, msg = "TooManyReplicas", msgTooMany
		if maxReplicas > limit {
			maxAllowed, reason, msg = limit, "ScaleUpLimit", msgScaleUpRate
		}
		if stabilized > maxAllowed {
			out = maxAllowed
		} else {
			reason, msg = "DesiredWithinRange", msgWithinRange
		}
	case stabilized < current:
		limit := min(r.downLimit(current, down), current)
		minAllowed := minReplicas
		reason, msg = "TooFewReplicas", msgTooFew
		if minReplicas < limit {
			minAllowed, reason, msg = limit, "ScaleDownLimit", msgScaleDownRate
		}
		if stabilized < minAllowed {
			out = minAllowed
		} else {
			reason, msg = "DesiredWithinRange", msgWithinRange
		}
	}
	r.setLimited(out != stabilized, reason, msg)
	return out
}

func (r *reconcile) setLimited(limited bool, reason, msg string) {
	status := corev1.ConditionFalse
	if limited {
		status = corev1.ConditionTrue
	}
	r.setCondition(autoscalingv2.ScalingLimited, status, reason, msg)
}

// remember records this sync's recommendation and forgets those older than
// window, which no decision looks at any more.
func (r *reconcile) remember(desired int32, window time.Duration) {
	cut := r.now.Add(-window)
	r.mem.Recommendations = slices.DeleteFunc(r.mem.Recommendations, func(rec Recommendation) bool { return rec.At.Before(cut) })
	r.mem.Recommendations = append(r.mem.Recommendations, Recommendation{At: r.now, Replicas: desired})
}

// Kubernetes' default scaling rules. The scale-down window comes from
// Config.DownscaleStabilization.
var (
	defaultScaleUp = autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptr(int32(0)),
		SelectPolicy:               ptr(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	}
	defaultScaleDown = autoscalingv2.HPAScalingRules{
		SelectPolicy: ptr(autoscalingv2.MaxChangePolicySelect),
		Policies:     []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
	}
)

// rules are the HPA's scale-up and scale-down rules with Kubernetes'
// defaults filled in where the behavior leaves them out.
func (r *reconcile) rules() (up, down autoscalingv2.HPAScalingRules) {
	var b autoscalingv2.HorizontalPodAutoscalerBehavior
	if r.hpa.Spec.Behavior != nil {
		b = *r.hpa.Spec.Behavior
	}
	down = withDefaults(b.ScaleDown, defaultScaleDown)
	if down.StabilizationWindowSeconds == nil {
		down.StabilizationWindowSeconds = ptr(int32(r.cfg.DownscaleStabilization / time.Second))
	}
	return withDefaults(b.ScaleUp, defaultScaleUp), down
}

func withDefaults(set *autoscalingv2.HPAScalingRules, def autoscalingv2.HPAScalingRules) autoscalingv2.HPAScalingRules {
	out := def
	if set == nil {
		return out
	}
	if set.StabilizationWindowSeconds != nil {
		out.StabilizationWindowSeconds = set.StabilizationWindowSeconds
	}
	if set.SelectPolicy != nil {
		out.SelectPolicy = set.SelectPolicy
	}
	if len(set.Policies) > 0 {
		out.Policies = set.Policies
	}
	return out
}

// upLimit is the most replicas the scale-up policies allow now: each
// policy's allowance added to the replicas at the start of its period,
// the largest of them (Max) or the smallest (Min).
func (r *reconcile) upLimit(current int32, rules autoscalingv2.HPAScalingRules) int32 {
	return r.policyLimit(current, rules, true)
}

// downLimit is the fewest replicas the scale-down policies allow now.
func (r *reconcile) downLimit(current int32, rules autoscalingv2.HPAScalingRules) int32 {
	return r.policyLimit(current, rules, false)
}

func (r *reconcile) policyLimit(current int32, rules autoscalingv2.HPAScalingRules, up bool) int32 {
	sel := *rules.SelectPolicy
	if sel == autoscalingv2.DisabledPolicySelect {
		return current
	}
	// Max picks the largest change: the highest limit up, the lowest down.
	largest := (sel != autoscalingv2.MinChangePolicySelect) == up
	var result int64
	if largest {
		result = math.MinInt64
	} else {
		result = math.MaxInt64
	}
	for _, p := range rules.Policies {
		period := time.Duration(p.PeriodSeconds) * time.Second
		start := int64(current) - int64(changeSince(r.mem.ScaleUps, r.now.Add(-period))) + int64(changeSince(r.mem.ScaleDowns, r.now.Add(-period)))
		var proposed int64
		switch {
		case p.Type == autoscalingv2.PodsScalingPolicy && up:
			proposed = start + int64(p.Value)
		case p.Type == autoscalingv2.PodsScalingPolicy:
			proposed = start - int64(p.Value)
		case up: // Percent, rounded up so that a small target still grows
			proposed = int64(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		default:
			proposed = int64(float64(start) * (1 - float64(p.Value)/100))
		}
		if largest {
			result = max(result, proposed)
		} else {
			result = min(result, proposed)
		}
	}
	return int32(min(max(result, math.MinInt32), math.MaxInt32))
}

// changeSince sums the changes of events after cut.
func changeSince(events []ScaleEvent, cut time.Time) int32 {
	var n int32
	for _, e := range events {
		if e.At.After(cut) {
			n += e.Change
		}
	}
	return n
}

// recordScaleEvent remembers a change of scale for the behavior's
// policies, forgetting events older than the longest policy period of its
// direction. Without behavior there are no policies to remember for.
func (r *reconcile) recordScaleEvent(prev, next int32) {
	if r.hpa.Spec.Behavior == nil {
		return
	}
	up, down := r.rules()
	add := func(events []ScaleEvent, rules autoscalingv2.HPAScalingRules, change int32) []ScaleEvent {
		var longest int32
		for _, p := range rules.Policies {
			longest = max(longest, p.PeriodSeconds)
		}
		cut := r.now.Add(-time.Duration(longest) * time.Second)
		events = slices.DeleteFunc(events, func(e ScaleEvent) bool { return e.At.Before(cut) })
		return append(events, ScaleEvent{At: r.now, Change: change})
	}
	if next > prev {
		r.mem.ScaleUps = add(r.mem.ScaleUps, up, next-prev)
	} else {
		r.mem.ScaleDowns = add(r.mem.ScaleDowns, down, prev-next)
	}
}
