package hpa

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/controllertest"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const ns = "default"

// window is the sampling interval of the snapshots in these tests.
const window = 10 * time.Second

type hpaOpt func(*autoscalingv2.HorizontalPodAutoscaler)

// newHPA is HPA default/web scaling Deployment web between 1 and 10 on cpu
// at 50 %, with no behavior.
func newHPA(opts ...hpaOpt) *autoscalingv2.HorizontalPodAutoscaler {
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, UID: "uid-hpa", ResourceVersion: "10", Generation: 1},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MaxReplicas:    10,
			Metrics:        []autoscalingv2.MetricSpec{cpuUtil(50)},
		},
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

func cpuUtil(p int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(p)}}}
}

func memUtil(p int32) autoscalingv2.MetricSpec {
	m := cpuUtil(p)
	m.Resource.Name = corev1.ResourceMemory
	return m
}

func averageValue(res corev1.ResourceName, q string) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: res, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse(q))}}}
}

func metrics(ms ...autoscalingv2.MetricSpec) hpaOpt {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.Metrics = ms }
}

func bounds(minR, maxR int32) hpaOpt {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas, h.Spec.MaxReplicas = &minR, maxR }
}

func behavior(up, down *autoscalingv2.HPAScalingRules) hpaOpt {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) {
		h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: up, ScaleDown: down}
	}
}

func rules(windowSeconds *int32, sel autoscalingv2.ScalingPolicySelect, policies ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	r := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: windowSeconds, Policies: policies}
	if sel != "" {
		r.SelectPolicy = &sel
	}
	return r
}

func pods(n int32, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: n, PeriodSeconds: period}
}

func percent(n int32, period int32) autoscalingv2.HPAScalingPolicy {
	return autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: n, PeriodSeconds: period}
}

// deployment is Deployment default/web selecting app=web.
func deployment(replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, UID: "uid-web", ResourceVersion: "20"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}
}

func targetOf(d *appsv1.Deployment) *Target {
	return &Target{Object: d, Replicas: controller.Replicas(d.Spec.Replicas), Selector: d.Spec.Selector}
}

type podOpt func(*corev1.Pod)

// pod is a Running pod of web on n1 requesting 100m and 100Mi, started 10
// minutes ago and Ready since 9.
func pod(name string, opts ...podOpt) *corev1.Pod {
	started := metav1.NewTime(now.Add(-10 * time.Minute))
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("100Mi")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &started, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-9 * time.Minute))}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func startedAgo(d time.Duration) podOpt {
	return func(p *corev1.Pod) { t := metav1.NewTime(now.Add(-d)); p.Status.StartTime = &t }
}

func readySince(status corev1.ConditionStatus, ago time.Duration) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(now.Add(-ago))}}
	}
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func deleting() podOpt {
	return func(p *corev1.Pod) { t := metav1.NewTime(now); p.DeletionTimestamp = &t }
}

func labelled(app string) podOpt {
	return func(p *corev1.Pod) { p.Labels = map[string]string{"app": app} }
}

func noRequests() podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Resources = corev1.ResourceRequirements{} }
}

// sample is one pod's usage in a snapshot.
type sample struct {
	pod      string
	cpuMilli int64
	memMi    int64
}

func snapshot(at time.Time, samples ...sample) Usage {
	u := Usage{At: at, Window: window, Pods: map[PodKey]PodUsage{}}
	for _, s := range samples {
		u.Pods[PodKey{Namespace: ns, Name: s.pod, Node: "n1"}] = PodUsage{CPUMillis: s.cpuMilli, MemoryBytes: s.memMi << 20}
	}
	return u
}

// cpu is a snapshot at now of pods p0, p1, ... using the given millicores.
func cpu(millis ...int64) Usage {
	var s []sample
	for i, m := range millis {
		s = append(s, sample{pod: fmt.Sprintf("p%d", i), cpuMilli: m})
	}
	return snapshot(now, s...)
}

// podsN is n default pods p0..p(n-1).
func podsN(n int) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		out = append(out, pod(fmt.Sprintf("p%d", i)))
	}
	return out
}

func condition(h *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType) autoscalingv2.HorizontalPodAutoscalerCondition {
	for _, c := range h.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return autoscalingv2.HorizontalPodAutoscalerCondition{}
}

// statusOf is the HPA as the result's status write leaves it (in itself if
// there is no status write).
func statusOf(t *testing.T, in *autoscalingv2.HorizontalPodAutoscaler, res Result) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	for _, w := range res.Writes {
		if w.Kind == Kind {
			if w.Action != controller.UpdateStatus || w.Object.GetResourceVersion() != in.ResourceVersion {
				t.Fatalf("HPA write %v at resourceVersion %q, want UpdateStatus at %q", w, w.Object.GetResourceVersion(), in.ResourceVersion)
			}
			return w.Object.(*autoscalingv2.HorizontalPodAutoscaler)
		}
	}
	return in
}

// scaledTo is the replicas the result writes to the target, or -1.
func scaledTo(t *testing.T, res Result) int32 {
	t.Helper()
	for _, w := range res.Writes {
		if w.Kind == controller.KindDeployment || w.Kind == controller.KindReplicaSet {
			if w.Action != controller.Update || w.Object.GetResourceVersion() != "20" {
				t.Fatalf("target write %v at resourceVersion %q, want an Update at 20", w, w.Object.GetResourceVersion())
			}
			switch o := w.Object.(type) {
			case *appsv1.Deployment:
				return *o.Spec.Replicas
			case *appsv1.ReplicaSet:
				return *o.Spec.Replicas
			}
		}
	}
	return -1
}

// noWindow is the default config without the default scale-down window,
// so one reconcile shows the formula's answer.
func noWindow() Config {
	c := DefaultConfig()
	c.DownscaleStabilization = 0
	return c
}

func TestFormula(t *testing.T) {
	tests := []struct {
		name     string
		hpa      *autoscalingv2.HorizontalPodAutoscaler
		replicas int32
		pods     []*corev1.Pod
		usage    Usage
		want     int32 // desired replicas
		util     int32 // current utilization of the first metric; -1: none reported
		reason   string
	}{
		{name: "one pod at 200 % of request, target 50 %: four pods", hpa: newHPA(), replicas: 1, pods: podsN(1), usage: cpu(200), want: 4, util: 200,
			reason: "New size: 4; reason: cpu resource utilization (percentage of request) above target"},
		{name: "54 % is within the 10 % tolerance", hpa: newHPA(), replicas: 2, pods: podsN(2), usage: cpu(54, 54), want: 2, util: 54},
		{name: "56 % is outside it: ceil(2 * 1.12)", hpa: newHPA(), replicas: 2, pods: podsN(2), usage: cpu(56, 56), want: 3, util: 56,
			reason: "New size: 3; reason: cpu resource utilization (percentage of request) above target"},
		{name: "46 % is within the tolerance below", hpa: newHPA(), replicas: 4, pods: podsN(4), usage: cpu(46, 46, 46, 46), want: 4, util: 46},
		{name: "10 % scales four pods down to one", hpa: newHPA(), replicas: 4, pods: podsN(4), usage: cpu(10, 10, 10, 10), want: 1, util: 10,
			reason: "New size: 1; reason: All metrics below target"},
		{name: "utilization is rounded down: 149/300", hpa: newHPA(), replicas: 3, pods: podsN(3), usage: cpu(50, 50, 49), want: 3, util: 49},
		{name: "memory utilization", hpa: newHPA(metrics(memUtil(50))), replicas: 2, pods: podsN(2),
			usage: snapshot(now, sample{pod: "p0", memMi: 90}, sample{pod: "p1", memMi: 90}), want: 4, util: 90,
			reason: "New size: 4; reason: memory resource utilization (percentage of request) above target"},
		{name: "cpu average value 100m, pods at 300m", hpa: newHPA(metrics(averageValue(corev1.ResourceCPU, "100m"))), replicas: 2, pods: podsN(2),
			usage: cpu(150, 150), want: 3, util: -1, reason: "New size: 3; reason: cpu resource above target"},
		{name: "memory average value 200Mi, pods at 50Mi", hpa: newHPA(metrics(averageValue(corev1.ResourceMemory, "200Mi"))), replicas: 4, pods: podsN(4),
			usage: snapshot(now, sample{pod: "p0", memMi: 50}, sample{pod: "p1", memMi: 50}, sample{pod: "p2", memMi: 50}, sample{pod: "p3", memMi: 50}), want: 1, util: -1},
		{name: "no metrics: cpu at 80 %", hpa: newHPA(metrics()), replicas: 2, pods: podsN(2), usage: cpu(100, 100), want: 3, util: 100},
		{name: "two metrics: the larger proposal wins", hpa: newHPA(metrics(cpuUtil(50), memUtil(50)), behavior(nil, nil)), replicas: 2, pods: podsN(2),
			usage: snapshot(now, sample{"p0", 75, 125}, sample{"p1", 75, 125}), want: 5, util: 75,
			reason: "New size: 5; reason: memory resource utilization (percentage of request) above target"},

		// Missing metrics and unready pods.
		{name: "scale-up: a pod without metrics counts as 0 %", hpa: newHPA(behavior(nil, nil)), replicas: 2, pods: podsN(2), usage: cpu(300), want: 6, util: 300},
		{name: "scale-down: a pod without metrics counts as 100 %", hpa: newHPA(), replicas: 4, pods: podsN(4), usage: cpu(0, 0, 0), want: 2, util: 0},
		{name: "scale-down reversed by a pod without metrics", hpa: newHPA(), replicas: 2, pods: podsN(2), usage: cpu(40), want: 2, util: 40},
		{name: "scale-down: a pod without metrics counts at a target above 100 %", hpa: newHPA(metrics(cpuUtil(300))), replicas: 3, pods: podsN(3),
			usage: cpu(0), want: 2, util: 0},
		{name: "average value scale-down: a pod without metrics counts at the target", hpa: newHPA(metrics(averageValue(corev1.ResourceCPU, "100m"))),
			replicas: 4, pods: podsN(4), usage: cpu(0, 0, 0), want: 1, util: -1},
		{name: "scale-up held back by an unready pod counted at 0 %", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", startedAgo(time.Minute), readySince(corev1.ConditionFalse, time.Minute))}, usage: cpu(60, 500), want: 2, util: 60},
		{name: "scale-up through an unready pod counted at 0 %", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", phase(corev1.PodPending))}, usage: cpu(200), want: 4, util: 200},
		{name: "scale-down leaves unready pods out", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", startedAgo(time.Minute), readySince(corev1.ConditionFalse, time.Minute))}, usage: cpu(10, 90), want: 1, util: 10},
		{name: "a young pod's sample from before it was Ready is left out", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", startedAgo(time.Minute), readySince(corev1.ConditionTrue, 5*time.Second))}, usage: cpu(10, 900), want: 1, util: 10},
		{name: "a young pod Ready for two windows counts", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", startedAgo(time.Minute), readySince(corev1.ConditionTrue, 2*window))}, usage: cpu(10, 190), want: 4, util: 100},
		{name: "an old pod that turned Ready just now counts", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", readySince(corev1.ConditionTrue, time.Second))}, usage: cpu(10, 190), want: 4, util: 100},
		{name: "an old pod that was Ready and then failed its probe counts", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", readySince(corev1.ConditionFalse, 5*time.Minute))}, usage: cpu(10, 190), want: 4, util: 100},
		{name: "an old pod never Ready since start is unready", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", readySince(corev1.ConditionFalse, 10*time.Minute-10*time.Second))}, usage: cpu(10, 190), want: 1, util: 10},
		{name: "a pod without a Ready condition is unready", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", func(p *corev1.Pod) { p.Status.Conditions = nil })}, usage: cpu(10, 190), want: 1, util: 10},
		{name: "memory ignores readiness", hpa: newHPA(metrics(memUtil(50))), replicas: 2,
			pods:  []*corev1.Pod{pod("p0"), pod("p1", readySince(corev1.ConditionFalse, time.Second))},
			usage: snapshot(now, sample{pod: "p0", memMi: 50}, sample{pod: "p1", memMi: 150}), want: 4, util: 100},
		{name: "deleted and failed pods are left out", hpa: newHPA(), replicas: 1,
			pods: []*corev1.Pod{pod("p0"), pod("p1", deleting()), pod("p2", phase(corev1.PodFailed))}, usage: cpu(100, 900, 900), want: 2, util: 100},
		{name: "pods the selector does not match are left out", hpa: newHPA(), replicas: 1,
			pods: []*corev1.Pod{pod("p0"), pod("p1", labelled("db"))}, usage: cpu(100, 900), want: 2, util: 100},
		{name: "a sample from another node is not this pod's", hpa: newHPA(), replicas: 2,
			pods: []*corev1.Pod{pod("p0"), pod("p1", func(p *corev1.Pod) { p.Spec.NodeName = "n2" })}, usage: cpu(10, 10), want: 2, util: 10},

		// Clamping.
		{name: "clamped to maxReplicas", hpa: newHPA(bounds(1, 3)), replicas: 2, pods: podsN(2), usage: cpu(200, 200), want: 3, util: 200},
		{name: "clamped to minReplicas", hpa: newHPA(bounds(3, 10)), replicas: 4, pods: podsN(4), usage: cpu(0, 0, 0, 0), want: 3, util: 0},
		{name: "without behavior one step at most doubles (or reaches 4)", hpa: newHPA(bounds(1, 100)), replicas: 3, pods: podsN(3), usage: cpu(900, 900, 900), want: 6, util: 900},
		{name: "above maxReplicas: down to it whatever the metrics", hpa: newHPA(bounds(1, 3)), replicas: 5, pods: podsN(5), usage: cpu(900, 900, 900, 900, 900), want: 3, util: -1,
			reason: "New size: 3; reason: Current number of replicas above Spec.MaxReplicas"},
		{name: "below minReplicas: up to it whatever the metrics", hpa: newHPA(bounds(2, 3)), replicas: 1, pods: podsN(1), usage: cpu(0), want: 2, util: -1,
			reason: "New size: 2; reason: Current number of replicas below Spec.MinReplicas"},
		{name: "a target at zero replicas is left alone", hpa: newHPA(), replicas: 0, usage: cpu(), want: 0, util: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployment(tt.replicas)
			in := Input{HPA: tt.hpa, Target: targetOf(d), Pods: tt.pods, Usage: tt.usage}
			check := controllertest.Frozen(t, tt.hpa, d, tt.pods)
			res := Reconcile(noWindow(), controllertest.Env(now), in)
			check()
			if res.Desired != tt.want {
				t.Fatalf("desired %d, want %d; conditions %+v", res.Desired, tt.want, statusOf(t, tt.hpa, res).Status.Conditions)
			}
			got := scaledTo(t, res)
			if tt.want == tt.replicas && got != -1 {
				t.Fatalf("scaled to %d, want no change", got)
			}
			if tt.want != tt.replicas && got != tt.want {
				t.Fatalf("scaled to %d, want %d", got, tt.want)
			}
			h := statusOf(t, tt.hpa, res)
			st := h.Status
			if st.CurrentReplicas != tt.replicas || st.DesiredReplicas != tt.want {
				t.Fatalf("status current %d desired %d, want %d and %d", st.CurrentReplicas, st.DesiredReplicas, tt.replicas, tt.want)
			}
			util := int32(-1)
			if len(st.CurrentMetrics) > 0 && st.CurrentMetrics[0].Resource.Current.AverageUtilization != nil {
				util = *st.CurrentMetrics[0].Resource.Current.AverageUtilization
			}
			if util != tt.util {
				t.Fatalf("current utilization %d, want %d (metrics %+v)", util, tt.util, st.CurrentMetrics)
			}
			var events []string
			for _, e := range res.Events {
				events = append(events, e.Reason+": "+e.Message)
			}
			switch {
			case tt.reason != "" && !slices.Equal(events, []string{ReasonRescale + ": " + tt.reason}):
				t.Fatalf("events %q, want %s: %s", events, ReasonRescale, tt.reason)
			case tt.reason == "" && tt.want != tt.replicas && len(events) != 1:
				t.Fatalf("events %q, want one SuccessfulRescale", events)
			case tt.want == tt.replicas && len(events) != 0:
				t.Fatalf("events %q, want none", events)
			}
			if tt.want != tt.replicas {
				if c := condition(h, autoscalingv2.AbleToScale); c.Status != corev1.ConditionTrue || c.Reason != "SucceededRescale" {
					t.Fatalf("AbleToScale %+v, want True SucceededRescale", c)
				}
				if st.LastScaleTime == nil || !st.LastScaleTime.Time.Equal(now) {
					t.Fatalf("lastScaleTime %v, want %v", st.LastScaleTime, now)
				}
			}
		})
	}
}

// TestConditions checks the conditions and events of decisions that are
// limited or cannot be made.
func TestConditions(t *testing.T) {
	type cond struct {
		typ    autoscalingv2.HorizontalPodAutoscalerConditionType
		status corev1.ConditionStatus
		reason string
		msg    string // substring
	}
	tests := []struct {
		name     string
		hpa      *autoscalingv2.HorizontalPodAutoscaler
		replicas int32
		pods     []*corev1.Pod
		usage    Usage
		want     int32
		conds    []cond
		events   []string // reasons
	}{
		{name: "within range", hpa: newHPA(), replicas: 2, pods: podsN(2), usage: cpu(50, 50), want: 2, conds: []cond{
			{autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size"},
			{autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "from cpu resource utilization (percentage of request)"},
			{autoscalingv2.ScalingLimited, corev1.ConditionFalse, "DesiredWithinRange", "within the acceptable range"},
		}},
		{name: "limited by maxReplicas", hpa: newHPA(bounds(1, 3)), replicas: 2, pods: podsN(2), usage: cpu(200, 200), want: 3, conds: []cond{
			{autoscalingv2.ScalingLimited, corev1.ConditionTrue, "TooManyReplicas", "more than the maximum"},
		}, events: []string{ReasonRescale}},
		{name: "limited by minReplicas", hpa: newHPA(bounds(2, 3)), replicas: 3, pods: podsN(3), usage: cpu(0, 0, 0), want: 2, conds: []cond{
			{autoscalingv2.ScalingLimited, corev1.ConditionTrue, "TooFewReplicas", "less than the minimum"},
		}, events: []string{ReasonRescale}},
		{name: "limited by the scale-up rate", hpa: newHPA(bounds(1, 100)), replicas: 1, pods: podsN(1), usage: cpu(900), want: 4, conds: []cond{
			{autoscalingv2.ScalingLimited, corev1.ConditionTrue, "ScaleUpLimit", "increasing faster than the maximum scale rate"},
		}, events: []string{ReasonRescale}},
		{name: "a container without a cpu request", hpa: newHPA(), replicas: 2, pods: []*corev1.Pod{pod("p0"), pod("p1", noRequests())}, usage: cpu(50, 50), want: 2, conds: []cond{
			{autoscalingv2.ScalingActive, corev1.ConditionFalse, ReasonFailedMetric, "failed to get cpu utilization: missing request for cpu in container c of Pod p1"},
		}, events: []string{ReasonFailedMetric, ReasonFailedCompute}},
		{name: "no metrics yet", hpa: newHPA(), replicas: 2, pods: podsN(2), usage: cpu(), want: 2, conds: []cond{
			{autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", ""},
			{autoscalingv2.ScalingActive, corev1.ConditionFalse, ReasonFailedMetric, "unable to get metrics for resource cpu: no metrics returned from the agents"},
		}, events: []string{ReasonFailedMetric, ReasonFailedCompute}},
		{name: "no pods", hpa: newHPA(), replicas: 2, usage: cpu(), want: 2, conds: []cond{
			{autoscalingv2.ScalingActive, corev1.ConditionFalse, ReasonFailedMetric, "no pods returned by selector"},
		}, events: []string{ReasonFailedMetric, ReasonFailedCompute}},
		{name: "only unready pods", hpa: newHPA(), replicas: 1, pods: []*corev1.Pod{pod("p0", startedAgo(time.Minute), readySince(corev1.ConditionFalse, time.Second))}, usage: cpu(50), want: 1, conds: []cond{
			{autoscalingv2.ScalingActive, corev1.ConditionFalse, ReasonFailedMetric, "did not receive metrics for targeted pods (pods might be unready)"},
		}, events: []string{ReasonFailedMetric, ReasonFailedCompute}},
		{name: "one metric fails, the other scales up", hpa: newHPA(metrics(cpuUtil(50), memUtil(50))), replicas: 2,
			pods: podsN(2), usage: snapshot(now, sample{"p0", 100, 0}, sample{"p1", 100, 0}), want: 4, conds: []cond{
				{autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", ""},
			}, events: []string{ReasonRescale}},
		{name: "one metric fails, the other would scale down: no change", hpa: newHPA(metrics(memUtil(50), averageValue(corev1.ResourceCPU, "1"))), replicas: 2,
			pods:  []*corev1.Pod{pod("p0", func(p *corev1.Pod) { delete(p.Spec.Containers[0].Resources.Requests, corev1.ResourceMemory) }), pod("p1")},
			usage: cpu(10, 10), want: 2, conds: []cond{
				{autoscalingv2.ScalingActive, corev1.ConditionFalse, ReasonFailedMetric, "missing request for memory in container c of Pod p0"},
			}, events: []string{ReasonFailedMetric, ReasonFailedCompute}},
		{name: "target at zero", hpa: newHPA(), replicas: 0, usage: cpu(), want: 0, conds: []cond{
			{autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "replica count of the target is zero"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Reconcile(noWindow(), controllertest.Env(now), Input{HPA: tt.hpa, Target: targetOf(deployment(tt.replicas)), Pods: tt.pods, Usage: tt.usage})
			if res.Desired != tt.want {
				t.Fatalf("desired %d, want %d", res.Desired, tt.want)
			}
			h := statusOf(t, tt.hpa, res)
			for _, want := range tt.conds {
				c := condition(h, want.typ)
				if c.Status != want.status || c.Reason != want.reason || !strings.Contains(c.Message, want.msg) {
					t.Fatalf("%s = %s %s %q, want %s %s containing %q", want.typ, c.Status, c.Reason, c.Message, want.status, want.reason, want.msg)
				}
				if !c.LastTransitionTime.Time.Equal(now) {
					t.Fatalf("%s transition time %v, want %v", want.typ, c.LastTransitionTime, now)
				}
			}
			var reasons []string
			for _, e := range res.Events {
				reasons = append(reasons, e.Reason)
			}
			if !slices.Equal(reasons, tt.events) {
				t.Fatalf("events %q, want %q", reasons, tt.events)
			}
			// The same inputs again, with the status written: no writes
			// and no events, but a scale that already happened.
			if scaledTo(t, res) != -1 {
				return
			}
			again := Reconcile(noWindow(), controllertest.Env(now.Add(time.Second)), Input{HPA: h, Target: targetOf(deployment(tt.replicas)), Pods: tt.pods, Usage: tt.usage, Memory: res.Memory})
			if len(again.Writes) != 0 || len(again.Events) != 0 {
				t.Fatalf("second reconcile: writes %q events %+v", controllertest.Summary(again.Writes), again.Events)
			}
		})
	}
}

func TestMissingTarget(t *testing.T) {
	h := newHPA(func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.ScaleTargetRef.Name = "nope" })
	target, err := FindTarget(h, []*appsv1.Deployment{deployment(2)}, nil)
	if target != nil || err == nil || err.Error() != `deployments.apps "nope" not found` {
		t.Fatalf("FindTarget = %v, %v", target, err)
	}
	check := controllertest.Frozen(t, h)
	res := Reconcile(DefaultConfig(), controllertest.Env(now), Input{HPA: h, TargetErr: err, Usage: cpu()})
	check()
	if len(res.Writes) != 1 || res.Writes[0].Kind != Kind {
		t.Fatalf("writes %q, want the HPA's status only", controllertest.Summary(res.Writes))
	}
	got := statusOf(t, h, res)
	c := condition(got, autoscalingv2.AbleToScale)
	const msg = `the HPA controller was unable to get the target's current scale: deployments.apps "nope" not found`
	if c.Status != corev1.ConditionFalse || c.Reason != ReasonFailedGetScale || c.Message != msg {
		t.Fatalf("AbleToScale %+v", c)
	}
	if len(res.Events) != 1 || res.Events[0] != (Event{Type: corev1.EventTypeWarning, Reason: ReasonFailedGetScale, Message: msg}) {
		t.Fatalf("events %+v", res.Events)
	}
	// Reported once: the next sync finds the condition already set.
	again := Reconcile(DefaultConfig(), controllertest.Env(now.Add(15*time.Second)), Input{HPA: got, TargetErr: err, Usage: cpu(), Memory: res.Memory})
	if len(again.Writes) != 0 || len(again.Events) != 0 {
		t.Fatalf("second reconcile: writes %q events %+v", controllertest.Summary(again.Writes), again.Events)
	}
	// Once the target exists, the HPA reports it can scale.
	third := Reconcile(DefaultConfig(), controllertest.Env(now.Add(30*time.Second)),
		Input{HPA: got, Target: targetOf(deployment(1)), Pods: podsN(1), Usage: cpu(50), Memory: again.Memory})
	if c := condition(statusOf(t, got, third), autoscalingv2.AbleToScale); c.Status != corev1.ConditionTrue {
		t.Fatalf("AbleToScale %+v after the target appeared", c)
	}
}

func TestFindTarget(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "cache", Namespace: ns, ResourceVersion: "20"},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cache"}}}}
	other := deployment(5)
	other.Namespace = "other"
	tests := []struct {
		kind, name string
		replicas   int32
		err        string
	}{
		{"Deployment", "web", 3, ""},
		{"ReplicaSet", "cache", 1, ""}, // nil replicas count as 1
		{"ReplicaSet", "web", 0, `replicasets.apps "web" not found`},
		{"Deployment", "cache", 0, `deployments.apps "cache" not found`},
		{"StatefulSet", "db", 0, `unrecognized resource: kind "StatefulSet" cannot be scaled`},
	}
	for _, tt := range tests {
		h := newHPA(func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{Kind: tt.kind, Name: tt.name}
		})
		got, err := FindTarget(h, []*appsv1.Deployment{other, deployment(3)}, []*appsv1.ReplicaSet{rs})
		switch {
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("%s/%s: error %v, want %q", tt.kind, tt.name, err, tt.err)
		case tt.err == "" && (err != nil || got.Replicas != tt.replicas || got.Object.GetNamespace() != ns):
			t.Errorf("%s/%s: %+v, %v; want %d replicas", tt.kind, tt.name, got, err, tt.replicas)
		}
	}
}

// step is one sync of a sequence: its time, the usage of each pod (the
// target has as many pods as usages), and the replicas it should leave.
type step struct {
	at    time.Duration
	usage []int64
	want  int32
	able  string // reason of AbleToScale, when checked
}

// runSteps reconciles h over the steps, carrying the memory, the status and
// the target's replicas from one to the next as the runner does.
func runSteps(t *testing.T, cfg Config, h *autoscalingv2.HorizontalPodAutoscaler, replicas int32, steps []step) {
	t.Helper()
	var mem Memory
	for i, s := range steps {
		at := now.Add(s.at)
		var ps []*corev1.Pod
		var samples []sample
		for j, u := range s.usage {
			name := fmt.Sprintf("p%d", j)
			ps = append(ps, pod(name))
			samples = append(samples, sample{pod: name, cpuMilli: u})
		}
		res := Reconcile(cfg, controllertest.Env(at), Input{HPA: h, Target: targetOf(deployment(replicas)), Pods: ps, Usage: snapshot(at, samples...), Memory: mem})
		h, mem = statusOf(t, h, res), res.Memory
		h.ResourceVersion = fmt.Sprint(100 + i)
		if res.Desired != s.want {
			t.Fatalf("step %d (+%v, usage %v, %d replicas): desired %d, want %d; conditions %+v", i, s.at, s.usage, replicas, res.Desired, s.want, h.Status.Conditions)
		}
		if s.able != "" {
			if c := condition(h, autoscalingv2.AbleToScale); c.Reason != s.able {
				t.Fatalf("step %d: AbleToScale reason %s (%s), want %s", i, c.Reason, c.Message, s.able)
			}
		}
		if len(mem.Recommendations) > 64 {
			t.Fatalf("step %d: %d recommendations remembered", i, len(mem.Recommendations))
		}
		replicas = res.Desired
	}
}

func TestStabilization(t *testing.T) {
	high := []int64{100, 100, 100, 100} // 100 % of request on four pods: 8 wanted, 4 allowed
	low4 := []int64{5, 5, 5, 5}
	tests := []struct {
		name     string
		cfg      Config
		hpa      *autoscalingv2.HorizontalPodAutoscaler
		replicas int32
		steps    []step
	}{
		{
			name: "default 5 min scale-down window, without behavior", cfg: DefaultConfig(), hpa: newHPA(bounds(1, 4)), replicas: 4,
			steps: []step{
				{at: 0, usage: high, want: 4},
				{at: 15 * time.Second, usage: low4, want: 4, able: "ScaleDownStabilized"},
				{at: 4 * time.Minute, usage: low4, want: 4, able: "ScaleDownStabilized"},
				{at: 5*time.Minute + time.Second, usage: low4, want: 1, able: "SucceededRescale"},
				{at: 5*time.Minute + 15*time.Second, usage: []int64{5}, want: 1, able: "ReadyForNewScale"},
			},
		},
		{
			name: "a new HPA does not scale down within the window of its first sight", cfg: DefaultConfig(), hpa: newHPA(), replicas: 4,
			steps: []step{
				{at: 0, usage: low4, want: 4, able: "ScaleDownStabilized"},
				{at: 5*time.Minute - time.Second, usage: low4, want: 4},
				{at: 5 * time.Minute, usage: low4, want: 1},
			},
		},
		{
			name: "scale-up is immediate, without behavior", cfg: DefaultConfig(), hpa: newHPA(), replicas: 1,
			steps: []step{
				{at: 0, usage: []int64{100}, want: 2},
				{at: 15 * time.Second, usage: []int64{100, 100}, want: 4},
			},
		},
		{
			name: "behavior: a 10 s scale-down window", cfg: DefaultConfig(), hpa: newHPA(bounds(1, 4), behavior(nil, rules(ptr(int32(10)), ""))), replicas: 1,
			steps: []step{
				{at: 0, usage: []int64{500}, want: 4},
				{at: 2 * time.Second, usage: []int64{500, 0, 0, 0}, want: 4},
				{at: 4 * time.Second, usage: low4, want: 4, able: "ScaleDownStabilized"},
				{at: 10 * time.Second, usage: low4, want: 4, able: "ScaleDownStabilized"},
				{at: 12*time.Second + time.Millisecond, usage: low4, want: 1},
			},
		},
		{
			name: "behavior: the highest recommendation of the window, not the first", cfg: DefaultConfig(), hpa: newHPA(bounds(1, 8), behavior(nil, rules(ptr(int32(60)), ""))), replicas: 8,
			steps: []step{
				{at: 0, usage: []int64{50, 50, 50, 50, 50, 50, 50, 50}, want: 8},
				{at: 61 * time.Second, usage: []int64{30, 30, 30, 30, 30, 30, 30, 30}, want: 5}, // ceil(8 * 0.6)
				{at: 70 * time.Second, usage: []int64{5, 5, 5, 5, 5}, want: 5, able: "ScaleDownStabilized"},
				{at: 122 * time.Second, usage: []int64{5, 5, 5, 5, 5}, want: 1},
			},
		},
		{
			name: "behavior: a 30 s scale-up window", cfg: DefaultConfig(), hpa: newHPA(behavior(rules(ptr(int32(30)), ""), nil)), replicas: 2,
			steps: []step{
				{at: 0, usage: []int64{50, 50}, want: 2},
				{at: 10 * time.Second, usage: []int64{100, 100}, want: 2, able: "ScaleUpStabilized"},
				{at: 20 * time.Second, usage: []int64{100, 100}, want: 2, able: "ScaleUpStabilized"},
				{at: 31 * time.Second, usage: []int64{100, 100}, want: 4},
			},
		},
		{
			name: "behavior: the scale-down window defaults to the config's", cfg: func() Config { c := DefaultConfig(); c.DownscaleStabilization = 20 * time.Second; return c }(),
			hpa: newHPA(behavior(rules(ptr(int32(0)), ""), nil)), replicas: 4,
			steps: []step{
				{at: 0, usage: low4, want: 4},
				{at: 19 * time.Second, usage: low4, want: 4},
				{at: 20 * time.Second, usage: low4, want: 1},
			},
		},
		{
			name: "behavior: a zero scale-down window scales down at once", cfg: DefaultConfig(), hpa: newHPA(behavior(nil, rules(ptr(int32(0)), ""))), replicas: 4,
			steps: []step{
				{at: 0, usage: low4, want: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.cfg, tt.hpa, tt.replicas, tt.steps) })
	}
}

func TestPolicies(t *testing.T) {
	zero := ptr(int32(0))
	busy := func(n int) []int64 { // 900 % each: as many as allowed
		u := make([]int64, n)
		for i := range u {
			u[i] = 900
		}
		return u
	}
	idle := func(n int) []int64 { return make([]int64, n) }
	tests := []struct {
		name     string
		hpa      *autoscalingv2.HorizontalPodAutoscaler
		replicas int32
		steps    []step
	}{
		{
			name: "default scale-up: 4 pods or 100 % per 15 s, whichever is more", hpa: newHPA(bounds(1, 100), behavior(nil, nil)), replicas: 2,
			steps: []step{
				{at: 0, usage: busy(2), want: 6},               // max(2+4, 2*2)
				{at: 5 * time.Second, usage: busy(6), want: 6}, // the 15 s period already grew by 4
				{at: 16 * time.Second, usage: busy(6), want: 12},
			},
		},
		{
			name: "Min picks the smaller allowance", hpa: newHPA(bounds(1, 100), behavior(rules(nil, autoscalingv2.MinChangePolicySelect), nil)), replicas: 2,
			steps: []step{{at: 0, usage: busy(2), want: 4}}, // min(2+4, 2*2)
		},
		{
			name: "one pod per minute", hpa: newHPA(bounds(1, 10), behavior(rules(zero, "", pods(1, 60)), nil)), replicas: 1,
			steps: []step{
				{at: 0, usage: busy(1), want: 2},
				{at: 20 * time.Second, usage: busy(2), want: 2},
				{at: 61 * time.Second, usage: busy(2), want: 3},
			},
		},
		{
			name: "Disabled scale-up", hpa: newHPA(behavior(rules(nil, autoscalingv2.DisabledPolicySelect), nil)), replicas: 2,
			steps: []step{{at: 0, usage: busy(2), want: 2}},
		},
		{
			name: "50 % down per minute", hpa: newHPA(bounds(1, 10), behavior(nil, rules(zero, "", percent(50, 60)))), replicas: 8,
			steps: []step{
				{at: 0, usage: idle(8), want: 4},
				{at: 30 * time.Second, usage: idle(4), want: 4},
				{at: 61 * time.Second, usage: idle(4), want: 2},
			},
		},
		{
			name: "Min of one pod and 50 % down: the smaller change", hpa: newHPA(bounds(1, 10), behavior(nil, rules(zero, autoscalingv2.MinChangePolicySelect, pods(1, 15), percent(50, 15)))), replicas: 8,
			steps: []step{{at: 0, usage: idle(8), want: 7}},
		},
		{
			name: "Max of one pod and 50 % down: the larger change", hpa: newHPA(bounds(1, 10), behavior(nil, rules(zero, "", pods(1, 15), percent(50, 15)))), replicas: 8,
			steps: []step{{at: 0, usage: idle(8), want: 4}},
		},
		{
			name: "Disabled scale-down", hpa: newHPA(behavior(nil, rules(zero, autoscalingv2.DisabledPolicySelect))), replicas: 4,
			steps: []step{{at: 0, usage: idle(4), want: 4}},
		},
		{
			name: "a scale-down in the period makes room for a scale-up", hpa: newHPA(bounds(1, 10), behavior(rules(zero, "", pods(1, 60)), rules(zero, ""))), replicas: 4,
			steps: []step{
				{at: 0, usage: idle(4), want: 1},
				{at: 10 * time.Second, usage: busy(1), want: 5}, // the period started at 4 (1 + 3 removed), plus one pod
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, DefaultConfig(), tt.hpa, tt.replicas, tt.steps) })
	}
}

func TestReplicaSetTarget(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, ResourceVersion: "20"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	h := newHPA(func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.ScaleTargetRef.Kind = "ReplicaSet" })
	target, err := FindTarget(h, nil, []*appsv1.ReplicaSet{rs})
	if err != nil {
		t.Fatal(err)
	}
	res := Reconcile(DefaultConfig(), controllertest.Env(now), Input{HPA: h, Target: target, Pods: podsN(1), Usage: cpu(100)})
	if got := scaledTo(t, res); got != 2 || *rs.Spec.Replicas != 1 {
		t.Fatalf("scaled to %d (input now %d), want 2 and the input untouched", got, *rs.Spec.Replicas)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{Tolerance: -0.1}, {Tolerance: 1}, {DownscaleStabilization: -time.Second}, {CPUInitializationPeriod: -1}, {InitialReadinessDelay: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v is valid, want an error", c)
		}
	}
}
