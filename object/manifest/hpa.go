package manifest

import (
	"fmt"
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// hpaFields are the spec paths of a HorizontalPodAutoscaler that Shoal
// implements: Resource metrics (cpu, memory) with a Utilization or
// AverageValue target, and the scaling behavior. Pods, Object, External and
// ContainerResource metrics, Value targets and the alpha per-direction
// tolerance are refused as not supported.
var hpaFields = append([]string{
	"spec.scaleTargetRef.apiVersion",
	"spec.scaleTargetRef.kind",
	"spec.scaleTargetRef.name",
	"spec.minReplicas",
	"spec.maxReplicas",
	"spec.metrics[].type",
	"spec.metrics[].resource.name",
	"spec.metrics[].resource.target.type",
	"spec.metrics[].resource.target.averageUtilization",
	"spec.metrics[].resource.target.averageValue",
}, append(scalingRulesFields("spec.behavior.scaleUp"), scalingRulesFields("spec.behavior.scaleDown")...)...)

func scalingRulesFields(p string) []string {
	return []string{
		p + ".stabilizationWindowSeconds",
		p + ".selectPolicy",
		p + ".policies[].type",
		p + ".policies[].value",
		p + ".policies[].periodSeconds",
	}
}

// Limits Kubernetes puts on the scaling behavior.
const (
	maxStabilizationWindowSeconds = 3600
	maxPolicyPeriodSeconds        = 1800
)

// validateHPA checks a HorizontalPodAutoscaler as Kubernetes' validation
// does, for what Shoal implements. A target that does not exist is not an
// error here: Kubernetes accepts the object and its controller reports the
// missing target in the status.
func validateHPA(obj metav1.Object) *fieldErr {
	h := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	s := &h.Spec
	ref := s.ScaleTargetRef
	switch ref.Kind {
	case "Deployment", "ReplicaSet":
	case "":
		return errAt("spec.scaleTargetRef.kind", "required")
	default:
		// StatefulSet is a scale target in Kubernetes; Shoal has no such kind yet.
		return unsupportedValue("spec.scaleTargetRef.kind", ref.Kind, "Deployment", "ReplicaSet")
	}
	if ref.Name == "" {
		return errAt("spec.scaleTargetRef.name", "required")
	}
	if errs := content.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
		return invalid("spec.scaleTargetRef.name", ref.Name, errs)
	}
	if v := ref.APIVersion; v != "" && v != "apps/v1" {
		return unsupportedValue("spec.scaleTargetRef.apiVersion", v, "apps/v1")
	}
	minReplicas := int32(1)
	if s.MinReplicas != nil {
		minReplicas = *s.MinReplicas
		if minReplicas < 1 {
			return atLeast("spec.minReplicas", minReplicas, 1)
		}
	}
	if s.MaxReplicas < 1 {
		return atLeast("spec.maxReplicas", s.MaxReplicas, 1)
	}
	if s.MaxReplicas < minReplicas {
		return errAt("spec.maxReplicas", fmt.Sprintf("%d: must be greater than or equal to minReplicas (%d)", s.MaxReplicas, minReplicas))
	}
	for i, m := range s.Metrics {
		if err := validateMetric(m, "spec.metrics["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	if b := s.Behavior; b != nil {
		if err := validateScalingRules(b.ScaleUp, "spec.behavior.scaleUp"); err != nil {
			return err
		}
		if err := validateScalingRules(b.ScaleDown, "spec.behavior.scaleDown"); err != nil {
			return err
		}
	}
	return nil
}

func validateMetric(m autoscalingv2.MetricSpec, p string) *fieldErr {
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
	case "":
		return errAt(p+".type", "required")
	default:
		return unsupportedValue(p+".type", string(m.Type), "Resource")
	}
	r := m.Resource
	if r == nil {
		return errAt(p+".resource", "required when type is Resource")
	}
	switch r.Name {
	case corev1.ResourceCPU, corev1.ResourceMemory:
	case "":
		return errAt(p+".resource.name", "required")
	default:
		return unsupportedValue(p+".resource.name", string(r.Name), "cpu", "memory")
	}
	t := r.Target
	tp := p + ".resource.target"
	switch t.Type {
	case autoscalingv2.UtilizationMetricType:
		if t.AverageValue != nil {
			return errAt(tp+".averageValue", "may not be set when type is Utilization")
		}
		if t.AverageUtilization == nil {
			return errAt(tp+".averageUtilization", "required when type is Utilization")
		}
		if *t.AverageUtilization < 1 {
			return atLeast(tp+".averageUtilization", *t.AverageUtilization, 1)
		}
	case autoscalingv2.AverageValueMetricType:
		if t.AverageUtilization != nil {
			return errAt(tp+".averageUtilization", "may not be set when type is AverageValue")
		}
		if t.AverageValue == nil {
			return errAt(tp+".averageValue", "required when type is AverageValue")
		}
		if t.AverageValue.Sign() <= 0 {
			return errAt(tp+".averageValue", fmt.Sprintf("%q: must be greater than 0", t.AverageValue.String()))
		}
	case "":
		return errAt(tp+".type", "required")
	default:
		return unsupportedValue(tp+".type", string(t.Type), "Utilization", "AverageValue")
	}
	return nil
}

func validateScalingRules(r *autoscalingv2.HPAScalingRules, p string) *fieldErr {
	if r == nil {
		return nil
	}
	if w := r.StabilizationWindowSeconds; w != nil {
		if *w < 0 {
			return atLeast(p+".stabilizationWindowSeconds", *w, 0)
		}
		if *w > maxStabilizationWindowSeconds {
			return errAt(p+".stabilizationWindowSeconds", fmt.Sprintf("%d: must be less than or equal to %d", *w, maxStabilizationWindowSeconds))
		}
	}
	if sp := r.SelectPolicy; sp != nil {
		switch *sp {
		case autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect:
		default:
			return unsupportedValue(p+".selectPolicy", string(*sp), "Max", "Min", "Disabled")
		}
	}
	for i, pol := range r.Policies {
		pp := p + ".policies[" + strconv.Itoa(i) + "]"
		switch pol.Type {
		case autoscalingv2.PodsScalingPolicy, autoscalingv2.PercentScalingPolicy:
		case "":
			return errAt(pp+".type", "required")
		default:
			return unsupportedValue(pp+".type", string(pol.Type), "Pods", "Percent")
		}
		if pol.Value < 1 {
			return errAt(pp+".value", fmt.Sprintf("%d: must be greater than 0", pol.Value))
		}
		if pol.PeriodSeconds < 1 {
			return errAt(pp+".periodSeconds", fmt.Sprintf("%d: must be greater than 0", pol.PeriodSeconds))
		}
		if pol.PeriodSeconds > maxPolicyPeriodSeconds {
			return errAt(pp+".periodSeconds", fmt.Sprintf("%d: must be less than or equal to %d", pol.PeriodSeconds, maxPolicyPeriodSeconds))
		}
	}
	return nil
}
