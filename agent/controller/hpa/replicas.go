package hpa

import (
	"errors"
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/shoal-dev/shoal/agent/controller"
)

// calc computes one metric's replica proposal from the target's pods and a
// usage snapshot, as Kubernetes' ReplicaCalculator. Values are in the
// resource's base unit here: millicores for cpu, bytes for memory.
type calc struct {
	cfg   Config
	now   time.Time
	usage Usage
	pods  []*corev1.Pod // the target's
}

// resourceProposal is the proposal of one Resource metric, its name as
// events word it, and its status.
func (c calc) resourceProposal(spec autoscalingv2.MetricSpec, current int32) (int32, string, autoscalingv2.MetricStatus, error) {
	if spec.Type != autoscalingv2.ResourceMetricSourceType || spec.Resource == nil {
		return 0, "", autoscalingv2.MetricStatus{}, fmt.Errorf("unsupported metric type %q: only Resource metrics are measured", spec.Type)
	}
	res := spec.Resource.Name
	if res != corev1.ResourceCPU && res != corev1.ResourceMemory {
		return 0, "", autoscalingv2.MetricStatus{}, fmt.Errorf("unsupported resource %q: only cpu and memory are measured", res)
	}
	status := func(v autoscalingv2.MetricValueStatus) autoscalingv2.MetricStatus {
		return autoscalingv2.MetricStatus{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: res, Current: v}}
	}
	t := spec.Resource.Target
	if t.AverageValue != nil {
		replicas, avg, err := c.averageValueReplicas(current, baseValue(res, *t.AverageValue), res)
		if err != nil {
			return 0, "", autoscalingv2.MetricStatus{}, fmt.Errorf("failed to get %s usage: %w", res, err)
		}
		return replicas, fmt.Sprintf("%s resource", res), status(autoscalingv2.MetricValueStatus{AverageValue: quantity(res, avg)}), nil
	}
	if t.AverageUtilization == nil {
		return 0, "", autoscalingv2.MetricStatus{}, errors.New("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")
	}
	replicas, util, avg, err := c.utilizationReplicas(current, *t.AverageUtilization, res)
	if err != nil {
		return 0, "", autoscalingv2.MetricStatus{}, fmt.Errorf("failed to get %s utilization: %w", res, err)
	}
	return replicas, fmt.Sprintf("%s resource utilization (percentage of request)", res),
		status(autoscalingv2.MetricValueStatus{AverageUtilization: &util, AverageValue: quantity(res, avg)}), nil
}

// baseValue is q in res's base unit.
func baseValue(res corev1.ResourceName, q resource.Quantity) int64 {
	if res == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// quantity is v, in res's base unit, as a Quantity.
func quantity(res corev1.ResourceName, v int64) *resource.Quantity {
	if res == corev1.ResourceCPU {
		return resource.NewMilliQuantity(v, resource.DecimalSI)
	}
	return resource.NewQuantity(v, resource.BinarySI)
}

// metrics returns the samples of the target's pods, by pod name.
func (c calc) metrics(res corev1.ResourceName) (map[string]int64, error) {
	m := map[string]int64{}
	for _, p := range c.pods {
		u, ok := c.usage.Pods[PodKey{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName}]
		if !ok {
			continue
		}
		if res == corev1.ResourceCPU {
			m[p.Name] = u.CPUMillis
		} else {
			m[p.Name] = u.MemoryBytes
		}
	}
	switch {
	case len(c.pods) == 0:
		return nil, errors.New("no pods returned by selector while calculating replica count")
	case len(m) == 0:
		return nil, fmt.Errorf("unable to get metrics for resource %s: no metrics returned from the agents", res)
	}
	return m, nil
}

// groups sorts the target's pods as Kubernetes' groupPods does.
type groups struct {
	ready                     int
	unready, missing, ignored map[string]bool
}

func (c calc) group(metrics map[string]int64, res corev1.ResourceName) groups {
	g := groups{unready: map[string]bool{}, missing: map[string]bool{}, ignored: map[string]bool{}}
	for _, p := range c.pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed {
			g.ignored[p.Name] = true
			continue
		}
		if p.Status.Phase == corev1.PodPending || p.Status.Phase == "" {
			g.unready[p.Name] = true
			continue
		}
		if _, ok := metrics[p.Name]; !ok {
			g.missing[p.Name] = true
			continue
		}
		if res == corev1.ResourceCPU && c.cpuUnready(p) {
			g.unready[p.Name] = true
			continue
		}
		g.ready++
	}
	return g
}

// cpuUnready reports whether p's cpu sample is not to be trusted: p is not
// Ready or has not started; or, in its initialization period, it is not
// Ready or the sample may cover time before it turned Ready; or, after it,
// it is not Ready and never was since its start.
//
// Kubernetes compares the sample's own timestamp with the Ready transition
// plus the window. A snapshot's samples are up to one Window older than
// Usage.At, so the sample's window may start as early as At - 2*Window:
// the pod counts only when that is after its Ready transition.
func (c calc) cpuUnready(p *corev1.Pod) bool {
	cond := controller.PodReadyCondition(p)
	if cond == nil || p.Status.StartTime == nil {
		return true
	}
	start := p.Status.StartTime.Time
	if start.Add(c.cfg.CPUInitializationPeriod).After(c.now) {
		return cond.Status == corev1.ConditionFalse || c.usage.At.Add(-2*c.usage.Window).Before(cond.LastTransitionTime.Time)
	}
	return cond.Status == corev1.ConditionFalse && start.Add(c.cfg.InitialReadinessDelay).After(cond.LastTransitionTime.Time)
}

// podRequests sums each pod's container requests of res.
func podRequests(pods []*corev1.Pod, res corev1.ResourceName) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, p := range pods {
		var sum int64
		for _, ctr := range p.Spec.Containers {
			q, ok := ctr.Resources.Requests[res]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of Pod %s", res, ctr.Name, p.Name)
			}
			sum += baseValue(res, q)
		}
		out[p.Name] = sum
	}
	return out, nil
}

// utilization is the usage over the requests of the pods in metrics, in
// percent rounded down, its ratio to target, and the average usage.
func utilization(metrics, requests map[string]int64, target int32) (float64, int32, int64, error) {
	var used, requested, n int64
	for name, v := range metrics {
		r, ok := requests[name]
		if !ok {
			continue
		}
		used += v
		requested += r
		n++
	}
	if requested == 0 {
		return 0, 0, 0, errors.New("no metrics returned matched known pods")
	}
	util := int32(min(used*100/requested, math.MaxInt32))
	return float64(util) / float64(target), util, used / n, nil
}

// utilizationReplicas is Kubernetes' GetResourceReplicas: the proposal for
// a Utilization target, the current utilization and the average usage.
func (c calc) utilizationReplicas(current, target int32, res corev1.ResourceName) (int32, int32, int64, error) {
	metrics, err := c.metrics(res)
	if err != nil {
		return 0, 0, 0, err
	}
	g := c.group(metrics, res)
	drop(metrics, g.ignored)
	drop(metrics, g.unready)
	if len(metrics) == 0 {
		return 0, 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	requests, err := podRequests(c.pods, res)
	if err != nil {
		return 0, 0, 0, err
	}
	ratio, util, avg, err := utilization(metrics, requests, target)
	if err != nil {
		return 0, 0, 0, err
	}
	upWithUnready := len(g.unready) > 0 && ratio > 1
	if !upWithUnready && len(g.missing) == 0 {
		if c.within(ratio) {
			return current, util, avg, nil
		}
		return ceilReplicas(ratio * float64(g.ready)), util, avg, nil
	}
	// On scale-down, missing pods count as using 100 % of their request
	// (or the target, if higher); on scale-up, as using nothing, as do
	// unready pods.
	if len(g.missing) > 0 {
		for name := range g.missing {
			switch {
			case ratio < 1:
				metrics[name] = requests[name] * max(100, int64(target)) / 100
			case ratio > 1:
				metrics[name] = 0
			}
		}
	}
	if upWithUnready {
		for name := range g.unready {
			metrics[name] = 0
		}
	}
	newRatio, _, _, err := utilization(metrics, requests, target)
	if err != nil {
		return 0, 0, 0, err
	}
	return c.recount(current, ratio, newRatio, len(metrics)), util, avg, nil
}

// averageValueReplicas is Kubernetes' GetRawResourceReplicas: the proposal
// for an AverageValue target (in res's base unit) and the average usage.
func (c calc) averageValueReplicas(current int32, target int64, res corev1.ResourceName) (int32, int64, error) {
	metrics, err := c.metrics(res)
	if err != nil {
		return 0, 0, err
	}
	g := c.group(metrics, res)
	drop(metrics, g.ignored)
	drop(metrics, g.unready)
	if len(metrics) == 0 {
		return 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	ratio, avg := averageRatio(metrics, target)
	upWithUnready := len(g.unready) > 0 && ratio > 1
	if !upWithUnready && len(g.missing) == 0 {
		if c.within(ratio) {
			return current, avg, nil
		}
		return ceilReplicas(ratio * float64(g.ready)), avg, nil
	}
	if len(g.missing) > 0 {
		for name := range g.missing {
			switch {
			case ratio < 1:
				metrics[name] = target
			case ratio > 1:
				metrics[name] = 0
			}
		}
	}
	if upWithUnready {
		for name := range g.unready {
			metrics[name] = 0
		}
	}
	newRatio, _ := averageRatio(metrics, target)
	return c.recount(current, ratio, newRatio, len(metrics)), avg, nil
}

func averageRatio(metrics map[string]int64, target int64) (float64, int64) {
	var sum int64
	for _, v := range metrics {
		sum += v
	}
	avg := sum / int64(len(metrics))
	return float64(avg) / float64(target), avg
}

// recount is the proposal from the ratio recomputed with missing and
// unready pods filled in: no change if that ratio is within the tolerance,
// or reverses the direction of the first, or would move the scale the
// other way.
func (c calc) recount(current int32, ratio, newRatio float64, pods int) int32 {
	if c.within(newRatio) || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1) {
		return current
	}
	n := ceilReplicas(newRatio * float64(pods))
	if (newRatio < 1 && n > current) || (newRatio > 1 && n < current) {
		return current
	}
	return n
}

// within reports whether ratio is within the tolerance of 1.
func (c calc) within(ratio float64) bool { return math.Abs(1-ratio) <= c.cfg.Tolerance }

func ceilReplicas(f float64) int32 {
	return int32(min(math.Ceil(f), math.MaxInt32))
}

func drop(m map[string]int64, names map[string]bool) {
	for n := range names {
		delete(m, n)
	}
}
