package hpa

import (
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/agent/controller"
)

// Kind is the kind of the object this controller reconciles, as Write.Kind
// spells it.
const Kind = "HorizontalPodAutoscaler"

// Reasons of the writes and events, as Kubernetes words them.
const (
	ReasonRescale         = "SuccessfulRescale"
	ReasonStatus          = "StatusUpdated"
	ReasonFailedGetScale  = "FailedGetScale"
	ReasonFailedMetric    = "FailedGetResourceMetric"
	ReasonFailedCompute   = "FailedComputeMetricsReplicas"
	reasonInvalidSelector = "InvalidSelector"
)

// Config holds the controller's settings; DefaultConfig has Kubernetes'.
type Config struct {
	// Tolerance is how far the usage ratio may be from 1 without a change
	// (Kubernetes' --horizontal-pod-autoscaler-tolerance).
	Tolerance float64
	// CPUInitializationPeriod is how long after a pod starts its cpu sample
	// is trusted only if it was taken a full window after the pod turned
	// Ready.
	CPUInitializationPeriod time.Duration
	// InitialReadinessDelay is how long after start a pod that is not Ready
	// may still turn Ready for the first time: after it, a not-Ready pod is
	// counted as it is.
	InitialReadinessDelay time.Duration
	// DownscaleStabilization is the scale-down window of an HPA whose
	// behavior does not set one.
	DownscaleStabilization time.Duration
}

// DefaultConfig returns Kubernetes' defaults: 10 % tolerance, 5 min cpu
// initialization, 30 s initial readiness delay, 5 min scale-down window.
func DefaultConfig() Config {
	return Config{
		Tolerance:               0.1,
		CPUInitializationPeriod: 5 * time.Minute,
		InitialReadinessDelay:   30 * time.Second,
		DownscaleStabilization:  5 * time.Minute,
	}
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.Tolerance < 0 || c.Tolerance >= 1:
		return fmt.Errorf("hpa: tolerance %v must be in [0, 1)", c.Tolerance)
	case c.CPUInitializationPeriod < 0:
		return errors.New("hpa: cpu initialization period is negative")
	case c.InitialReadinessDelay < 0:
		return errors.New("hpa: initial readiness delay is negative")
	case c.DownscaleStabilization < 0:
		return errors.New("hpa: downscale stabilization window is negative")
	}
	return nil
}

// Target is the object an HPA scales, as the caller found it.
type Target struct {
	// Object is the *appsv1.Deployment or *appsv1.ReplicaSet, carrying the
	// resourceVersion it was read at. It is not modified.
	Object metav1.Object
	// Replicas is its spec.replicas (nil counts as 1).
	Replicas int32
	// Selector selects its pods.
	Selector *metav1.LabelSelector
}

// FindTarget returns the target of h among the Deployments and ReplicaSets
// of h's namespace, or an error worded as Kubernetes' when there is none.
func FindTarget(h *autoscalingv2.HorizontalPodAutoscaler, deployments []*appsv1.Deployment, sets []*appsv1.ReplicaSet) (*Target, error) {
	ref := h.Spec.ScaleTargetRef
	switch ref.Kind {
	case controller.KindDeployment:
		for _, d := range deployments {
			if d.Namespace == h.Namespace && d.Name == ref.Name {
				return &Target{Object: d, Replicas: controller.Replicas(d.Spec.Replicas), Selector: d.Spec.Selector}, nil
			}
		}
		return nil, fmt.Errorf("deployments.apps %q not found", ref.Name)
	case controller.KindReplicaSet:
		for _, rs := range sets {
			if rs.Namespace == h.Namespace && rs.Name == ref.Name {
				return &Target{Object: rs, Replicas: controller.Replicas(rs.Spec.Replicas), Selector: rs.Spec.Selector}, nil
			}
		}
		return nil, fmt.Errorf("replicasets.apps %q not found", ref.Name)
	}
	return nil, fmt.Errorf("unrecognized resource: kind %q cannot be scaled (Deployment and ReplicaSet can)", ref.Kind)
}

// PodKey names one pod on one node: the node tells a pod from an older one
// of the same name that is still stopping elsewhere.
type PodKey struct {
	Namespace, Name, Node string
}

// PodUsage is one pod's latest sample, summed over its containers.
type PodUsage struct {
	CPUMillis   int64 // CPU rate over the sampling window, in millicores
	MemoryBytes int64 // memory working set
}

// Usage is a snapshot of what every pod uses, gathered from all agents.
type Usage struct {
	// At is when the snapshot was taken; each sample is at most Window
	// older.
	At time.Time
	// Window is the interval CPU rates are measured over (the kubelets'
	// sampling interval).
	Window time.Duration
	Pods   map[PodKey]PodUsage
}

// Memory is what the controller remembers of one HPA between syncs.
type Memory struct {
	// Recommendations are the unstabilized desired replicas of recent
	// syncs.
	Recommendations []Recommendation
	// ScaleUps and ScaleDowns are recent changes of scale, for the
	// behavior's policies.
	ScaleUps, ScaleDowns []ScaleEvent
}

// Recommendation is one sync's desired replicas before stabilization.
type Recommendation struct {
	At       time.Time
	Replicas int32
}

// ScaleEvent is one change of scale by Change replicas (always positive).
type ScaleEvent struct {
	At     time.Time
	Change int32
}

func (m Memory) clone() Memory {
	return Memory{Recommendations: slices.Clone(m.Recommendations), ScaleUps: slices.Clone(m.ScaleUps), ScaleDowns: slices.Clone(m.ScaleDowns)}
}

// Input is everything one reconcile of one HPA decides from.
type Input struct {
	HPA *autoscalingv2.HorizontalPodAutoscaler
	// Target is nil when it could not be found; TargetErr says why.
	Target    *Target
	TargetErr error
	// Pods are the pods of the HPA's namespace (the target's are those its
	// selector matches).
	Pods   []*corev1.Pod
	Usage  Usage
	Memory Memory
}

// Event is one Event to record on the HPA.
type Event struct {
	Type, Reason, Message string
}

// Result is what one reconcile decided.
type Result struct {
	// Writes: the target's new spec.replicas (Update) and the HPA's status
	// (UpdateStatus), each only when it changes.
	Writes []controller.Write
	// Events to record on the HPA once the writes are committed.
	Events []Event
	// Memory to keep for the next sync once the writes are committed; if
	// they are refused, reconcile again from the old one.
	Memory Memory
	// Desired is the replicas decided (the current ones when nothing
	// changes or nothing could be decided).
	Desired int32
}

// Reconcile decides one HPA's scale. See the package documentation.
func Reconcile(cfg Config, env controller.Env, in Input) Result {
	h := in.HPA
	r := &reconcile{cfg: cfg, env: env, now: env.Now, hpa: h, mem: in.Memory.clone(),
		conds: slices.Clone(h.Status.Conditions)}
	st := autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: ptr(h.Generation),
		LastScaleTime:      h.Status.LastScaleTime,
		CurrentReplicas:    h.Status.CurrentReplicas,
		DesiredReplicas:    h.Status.DesiredReplicas,
		CurrentMetrics:     h.Status.CurrentMetrics,
	}
	if in.Target == nil {
		msg := "the HPA controller was unable to get the target's current scale"
		if in.TargetErr != nil {
			msg += ": " + in.TargetErr.Error()
		}
		r.warn(autoscalingv2.AbleToScale, ReasonFailedGetScale, msg, ReasonFailedGetScale)
		return r.finish(st, nil, h.Status.DesiredReplicas)
	}
	r.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", "the HPA controller was able to get the target's current scale")

	current := in.Target.Replicas
	minReplicas := controller.Replicas(h.Spec.MinReplicas)
	maxReplicas := h.Spec.MaxReplicas
	if len(r.mem.Recommendations) == 0 {
		r.mem.Recommendations = []Recommendation{{At: r.now, Replicas: current}}
	}
	st.CurrentReplicas = current

	desired := int32(0)
	reason := ""
	switch {
	case current == 0 && minReplicas != 0:
		r.setCondition(autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
	case current > maxReplicas:
		desired, reason = maxReplicas, "Current number of replicas above Spec.MaxReplicas"
	case current < minReplicas:
		desired, reason = minReplicas, "Current number of replicas below Spec.MinReplicas"
	default:
		sel, err := metav1.LabelSelectorAsSelector(in.Target.Selector)
		if err != nil || sel.Empty() {
			msg := "the HPA target's selector selects no pods"
			if err != nil {
				msg = "couldn't convert selector into a corresponding internal selector object: " + err.Error()
			}
			r.warn(autoscalingv2.ScalingActive, reasonInvalidSelector, msg, reasonInvalidSelector)
			st.CurrentMetrics = nil
			return r.finish(st, nil, current)
		}
		c := calc{cfg: cfg, now: r.now, usage: in.Usage, pods: selectPods(in.Pods, h.Namespace, sel)}
		proposal, metric, statuses, ok := r.metricsProposal(c, current)
		st.CurrentMetrics = statuses
		if !ok {
			return r.finish(st, nil, current)
		}
		desired = proposal
		switch {
		case desired > current:
			reason = metric + " above target"
		case desired < current:
			reason = "All metrics below target"
		}
		if h.Spec.Behavior == nil {
			desired = r.normalize(current, desired, minReplicas, maxReplicas)
		} else {
			desired = r.normalizeWithBehavior(current, desired, minReplicas, maxReplicas)
		}
	}

	if desired == current {
		return r.finish(st, nil, current)
	}
	r.setCondition(autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", fmt.Sprintf("the HPA controller was able to update the target scale to %d", desired))
	r.events = append(r.events, Event{Type: corev1.EventTypeNormal, Reason: ReasonRescale, Message: fmt.Sprintf("New size: %d; reason: %s", desired, reason)})
	r.recordScaleEvent(current, desired)
	t := env.Time()
	st.LastScaleTime = &t
	return r.finish(st, scaleWrite(in.Target, desired), desired)
}

// reconcile is the state of one Reconcile call.
type reconcile struct {
	cfg    Config
	env    controller.Env
	now    time.Time
	hpa    *autoscalingv2.HorizontalPodAutoscaler
	mem    Memory
	conds  []autoscalingv2.HorizontalPodAutoscalerCondition
	events []Event
}

// finish writes the status (and the target's scale, if any) and returns
// the result.
func (r *reconcile) finish(st autoscalingv2.HorizontalPodAutoscalerStatus, scale *controller.Write, desired int32) Result {
	st.DesiredReplicas = desired
	st.Conditions = r.conds
	var writes []controller.Write
	if scale != nil {
		writes = append(writes, *scale)
	}
	if !apiequality.Semantic.DeepEqual(st, r.hpa.Status) {
		c := r.hpa.DeepCopy()
		c.Status = *st.DeepCopy() // st shares pointers with the input
		writes = append(writes, controller.Write{Action: controller.UpdateStatus, Kind: Kind, Object: c, Reason: ReasonStatus})
	}
	return Result{Writes: writes, Events: r.events, Memory: r.mem, Desired: desired}
}

// setCondition sets one condition, keeping its transition time unless its
// status changes, as Kubernetes' setConditionInList.
func (r *reconcile) setCondition(typ autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason, message string) {
	i := slices.IndexFunc(r.conds, func(c autoscalingv2.HorizontalPodAutoscalerCondition) bool { return c.Type == typ })
	if i < 0 {
		r.conds = append(r.conds, autoscalingv2.HorizontalPodAutoscalerCondition{Type: typ})
		i = len(r.conds) - 1
	}
	c := &r.conds[i]
	if c.Status != status {
		c.LastTransitionTime = r.env.Time()
	}
	c.Status, c.Reason, c.Message = status, reason, message
}

// warn sets a False condition and records a Warning event with the
// condition's message when the condition did not already say so.
func (r *reconcile) warn(typ autoscalingv2.HorizontalPodAutoscalerConditionType, reason, message, eventReason string) {
	if r.changes(typ, corev1.ConditionFalse, reason, message) {
		r.events = append(r.events, Event{Type: corev1.EventTypeWarning, Reason: eventReason, Message: message})
	}
	r.setCondition(typ, corev1.ConditionFalse, reason, message)
}

// changes reports whether the HPA's stored condition of typ differs from
// the one given.
func (r *reconcile) changes(typ autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason, message string) bool {
	for _, c := range r.hpa.Status.Conditions {
		if c.Type == typ {
			return c.Status != status || c.Reason != reason || c.Message != message
		}
	}
	return true
}

func scaleWrite(t *Target, replicas int32) *controller.Write {
	switch o := t.Object.(type) {
	case *appsv1.Deployment:
		c := o.DeepCopy()
		c.Spec.Replicas = &replicas
		return &controller.Write{Action: controller.Update, Kind: controller.KindDeployment, Object: c, Reason: ReasonRescale}
	case *appsv1.ReplicaSet:
		c := o.DeepCopy()
		c.Spec.Replicas = &replicas
		return &controller.Write{Action: controller.Update, Kind: controller.KindReplicaSet, Object: c, Reason: ReasonRescale}
	}
	return nil
}

// selectPods returns the pods of namespace ns that sel matches.
func selectPods(pods []*corev1.Pod, ns string, sel labels.Selector) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Namespace == ns && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// defaultMetrics is what an HPA without metrics scales on, as Kubernetes
// defaults it: cpu at 80 % of requests.
var defaultMetrics = []autoscalingv2.MetricSpec{{
	Type: autoscalingv2.ResourceMetricSourceType,
	Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{
		Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80)),
	}},
}}

func ptr[T any](v T) *T { return &v }

// metricsProposal computes every metric's proposal and returns the largest,
// the name of the metric that made it, and the metrics' statuses. It
// reports false, with the conditions and events set, when no decision can
// be made: every metric failed, or some failed and the others would scale
// down.
func (r *reconcile) metricsProposal(c calc, current int32) (int32, string, []autoscalingv2.MetricStatus, bool) {
	specs := r.hpa.Spec.Metrics
	if len(specs) == 0 {
		specs = defaultMetrics
	}
	var statuses []autoscalingv2.MetricStatus
	replicas, metric := int32(0), ""
	invalid := 0
	var firstErr error
	for _, spec := range specs {
		proposal, name, status, err := c.resourceProposal(spec, current)
		if err != nil {
			if invalid == 0 {
				firstErr = err
			}
			invalid++
			continue
		}
		statuses = append(statuses, status)
		if replicas == 0 || proposal > replicas {
			replicas, metric = proposal, name
		}
	}
	if invalid >= len(specs) || (invalid > 0 && replicas < current) {
		msg := "the HPA was unable to compute the replica count: " + firstErr.Error()
		if r.changes(autoscalingv2.ScalingActive, corev1.ConditionFalse, ReasonFailedMetric, msg) {
			r.events = append(r.events,
				Event{Type: corev1.EventTypeWarning, Reason: ReasonFailedMetric, Message: firstErr.Error()},
				Event{Type: corev1.EventTypeWarning, Reason: ReasonFailedCompute, Message: fmt.Sprintf("invalid metrics (%d invalid out of %d), first error is: %v", invalid, len(specs), firstErr)})
		}
		r.setCondition(autoscalingv2.ScalingActive, corev1.ConditionFalse, ReasonFailedMetric, msg)
		return 0, "", statuses, false
	}
	r.setCondition(autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "the HPA was able to successfully calculate a replica count from "+metric)
	return replicas, metric, statuses, true
}
