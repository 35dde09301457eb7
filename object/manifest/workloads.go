package manifest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/object"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podTemplateFields are the paths of a pod template at p.
func podTemplateFields(p string) []string {
	return append([]string{p + ".metadata.labels", p + ".metadata.annotations"}, podSpecFields(p+".spec")...)
}

// replicaSetFields and deploymentFields are the spec paths of the two
// workload controllers.
var (
	replicaSetFields = append([]string{
		"spec.replicas",
		"spec.minReadySeconds",
	}, append(labelSelectorFields("spec.selector"), podTemplateFields("spec.template")...)...)

	deploymentFields = append([]string{
		"spec.replicas",
		"spec.minReadySeconds",
		"spec.strategy.type",
		"spec.strategy.rollingUpdate.maxSurge",
		"spec.strategy.rollingUpdate.maxUnavailable",
		"spec.revisionHistoryLimit",
		"spec.progressDeadlineSeconds",
		"spec.paused",
	}, append(labelSelectorFields("spec.selector"), podTemplateFields("spec.template")...)...)

	nodeFields = []string{
		"spec.unschedulable",
		"spec.podCIDR",
		"spec.podCIDRs",
		"spec.taints[].key",
		"spec.taints[].value",
		"spec.taints[].effect",
		// Set by the node lifecycle controller on NoExecute taints, as in
		// Kubernetes; a round-tripped Node carries it.
		"spec.taints[].timeAdded",
	}

	eventFields = []string{
		"involvedObject.kind",
		"involvedObject.namespace",
		"involvedObject.name",
		"involvedObject.uid",
		"reason",
		"message",
		"type",
		"count",
		"firstTimestamp",
		"lastTimestamp",
		"source.component",
		"source.host",
	}

	nodeAllocationFields = []string{
		"spec.revision",
		"spec.pods",
	}
)

func validateReplicaSet(obj metav1.Object) *fieldErr {
	rs := obj.(*appsv1.ReplicaSet)
	if err := nonNegative("spec.replicas", rs.Spec.Replicas); err != nil {
		return err
	}
	if rs.Spec.MinReadySeconds < 0 {
		return atLeast("spec.minReadySeconds", rs.Spec.MinReadySeconds, 0)
	}
	return validateWorkload(rs.Spec.Selector, &rs.Spec.Template)
}

func validateDeployment(obj metav1.Object) *fieldErr {
	d := obj.(*appsv1.Deployment)
	s := &d.Spec
	if err := nonNegative("spec.replicas", s.Replicas); err != nil {
		return err
	}
	if s.MinReadySeconds < 0 {
		return atLeast("spec.minReadySeconds", s.MinReadySeconds, 0)
	}
	if err := nonNegative("spec.revisionHistoryLimit", s.RevisionHistoryLimit); err != nil {
		return err
	}
	if pd := s.ProgressDeadlineSeconds; pd != nil && *pd <= s.MinReadySeconds {
		return errAt("spec.progressDeadlineSeconds", fmt.Sprintf("%d: must be greater than minReadySeconds (%d)", *pd, s.MinReadySeconds))
	}
	if err := validateStrategy(s.Strategy); err != nil {
		return err
	}
	return validateWorkload(s.Selector, &s.Template)
}

func validateStrategy(st appsv1.DeploymentStrategy) *fieldErr {
	switch st.Type {
	case "", appsv1.RollingUpdateDeploymentStrategyType:
	case appsv1.RecreateDeploymentStrategyType:
		if st.RollingUpdate != nil {
			return errAt("spec.strategy.rollingUpdate", "may not be set when type is Recreate")
		}
		return nil
	default:
		return unsupportedValue("spec.strategy.type", string(st.Type), "RollingUpdate", "Recreate")
	}
	ru := st.RollingUpdate
	if ru == nil {
		return nil // the defaults, 25% and 25%
	}
	surge, err := intOrPercent(ru.MaxSurge, "spec.strategy.rollingUpdate.maxSurge")
	if err != nil {
		return err
	}
	unavailable, err := intOrPercent(ru.MaxUnavailable, "spec.strategy.rollingUpdate.maxUnavailable")
	if err != nil {
		return err
	}
	if ru.MaxUnavailable != nil && ru.MaxUnavailable.Type == intstr.String && unavailable > 100 {
		return errAt("spec.strategy.rollingUpdate.maxUnavailable", fmt.Sprintf("%q: must not be greater than 100%%", ru.MaxUnavailable.StrVal))
	}
	if ru.MaxSurge != nil && ru.MaxUnavailable != nil && surge == 0 && unavailable == 0 {
		return errAt("spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0")
	}
	return nil
}

// intOrPercent checks a count or percentage ("25%") and returns its number.
func intOrPercent(v *intstr.IntOrString, p string) (int, *fieldErr) {
	if v == nil {
		return -1, nil
	}
	if v.Type == intstr.Int {
		if v.IntVal < 0 {
			return 0, atLeast(p, v.IntVal, 0)
		}
		return int(v.IntVal), nil
	}
	if errs := validation.IsValidPercent(v.StrVal); len(errs) > 0 {
		return 0, invalid(p, v.StrVal, errs)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if err != nil {
		return 0, errAt(p, fmt.Sprintf("%q: %v", v.StrVal, err))
	}
	return n, nil
}

// validateWorkload checks what a ReplicaSet and a Deployment share: a
// selector that selects the pods of their template, and the template.
func validateWorkload(sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec) *fieldErr {
	if sel == nil {
		return errAt("spec.selector", "required")
	}
	if err := validateLabelSelector(sel, "spec.selector"); err != nil {
		return err
	}
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return errAt("spec.selector", "must not be empty: it would select every pod of the namespace")
	}
	for _, k := range sortedKeys(tmpl.Labels) {
		if err := labelPair("spec.template.metadata.labels", k, tmpl.Labels[k]); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(tmpl.Annotations) {
		if errs := content.IsLabelKey(strings.ToLower(k)); len(errs) > 0 {
			return errAt("spec.template.metadata.annotations."+k, "invalid key: "+strings.Join(errs, "; "))
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil { // cannot happen: validateLabelSelector passed
		return errAt("spec.selector", err.Error())
	}
	if !selector.Matches(labels.Set(tmpl.Labels)) {
		return errAt("spec.template.metadata.labels", "does not match spec.selector")
	}
	if err := validatePodSpec(&tmpl.Spec, "spec.template.spec"); err != nil {
		return err
	}
	if rp := tmpl.Spec.RestartPolicy; rp != "" && rp != corev1.RestartPolicyAlways {
		// The controller replaces pods that end; a pod that stays ended
		// would never be replaced.
		return unsupportedValue("spec.template.spec.restartPolicy", string(rp), "Always")
	}
	return nil
}

func validateNode(obj metav1.Object) *fieldErr {
	n := obj.(*corev1.Node)
	if c := n.Spec.PodCIDR; c != "" {
		if err := firstFieldErr(validation.IsValidCIDR(field.NewPath("spec", "podCIDR"), c)); err != nil {
			return err
		}
	}
	switch cs := n.Spec.PodCIDRs; {
	case len(cs) > 1:
		return errAt("spec.podCIDRs", "dual-stack nodes are not supported: at most one range")
	case len(cs) == 1 && cs[0] != n.Spec.PodCIDR:
		return errAt("spec.podCIDRs[0]", fmt.Sprintf("%q: must equal spec.podCIDR %q", cs[0], n.Spec.PodCIDR))
	}
	type keyEffect struct{ key, effect string }
	seen := map[keyEffect]int{}
	for i, t := range n.Spec.Taints {
		p := "spec.taints[" + strconv.Itoa(i) + "]"
		if t.Key == "" {
			return errAt(p+".key", "required")
		}
		if errs := content.IsLabelKey(t.Key); len(errs) > 0 {
			return invalid(p+".key", t.Key, errs)
		}
		if errs := content.IsLabelValue(t.Value); len(errs) > 0 {
			return invalid(p+".value", t.Value, errs)
		}
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		case "":
			return errAt(p+".effect", "required")
		default:
			return unsupportedValue(p+".effect", string(t.Effect), "NoSchedule", "PreferNoSchedule", "NoExecute")
		}
		ke := keyEffect{t.Key, string(t.Effect)}
		if j, dup := seen[ke]; dup {
			return errAt(p, fmt.Sprintf("taint %s:%s is also spec.taints[%d]", t.Key, t.Effect, j))
		}
		seen[ke] = i
	}
	return nil
}

func validateEvent(obj metav1.Object) *fieldErr {
	e := obj.(*corev1.Event)
	ref := e.InvolvedObject
	if ref.Kind == "" {
		return errAt("involvedObject.kind", "required")
	}
	if ref.Name == "" {
		return errAt("involvedObject.name", "required")
	}
	if ref.Namespace != "" && ref.Namespace != e.Namespace {
		return errAt("involvedObject.namespace", fmt.Sprintf("%q: does not match metadata.namespace %q", ref.Namespace, e.Namespace))
	}
	switch e.Type {
	case "", corev1.EventTypeNormal, corev1.EventTypeWarning:
	default:
		return unsupportedValue("type", e.Type, "Normal", "Warning")
	}
	if e.Count < 0 {
		return atLeast("count", e.Count, 0)
	}
	if !e.FirstTimestamp.IsZero() && !e.LastTimestamp.IsZero() && e.LastTimestamp.Before(&e.FirstTimestamp) {
		return errAt("lastTimestamp", "must not be before firstTimestamp")
	}
	return nil
}

func validatePlacementGuard(obj metav1.Object) *fieldErr {
	a := obj.(*object.PlacementGuard)
	if a.Spec.Revision < 0 {
		return atLeast("spec.revision", a.Spec.Revision, 0)
	}
	return nil
}
