package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func hpaObject(t *testing.T, edit func(*autoscalingv2.HorizontalPodAutoscaler)) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	p := int32(50)
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
			MaxReplicas:    4,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &p}}}},
		},
	}
	if edit != nil {
		edit(h)
	}
	return h
}

func withCPU(util int32, avg string) func(*autoscalingv2.HorizontalPodAutoscaler) {
	return func(h *autoscalingv2.HorizontalPodAutoscaler) {
		q := resource.MustParse(avg)
		h.Status.CurrentReplicas, h.Status.DesiredReplicas = 2, 3
		h.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: &util, AverageValue: &q}}}}
	}
}

func TestHPATable(t *testing.T) {
	memory := func(h *autoscalingv2.HorizontalPodAutoscaler) {
		q := resource.MustParse("100Mi")
		h.Spec.Metrics = append(h.Spec.Metrics, autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q}}})
	}
	tests := []struct {
		name string
		hpa  *autoscalingv2.HorizontalPodAutoscaler
		want string // the row after NAME and REFERENCE, up to AGE
	}{
		{"before the first measurement", hpaObject(t, nil), "cpu: <unknown>/50%   1         4         0"},
		{"measured", hpaObject(t, withCPU(73, "73m")), "cpu: 73%/50%   1         4         2"},
		{"no metrics: cpu at 80 %", hpaObject(t, func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.Metrics = nil }), "cpu: <unknown>/80%"},
		{"an average value", hpaObject(t, func(h *autoscalingv2.HorizontalPodAutoscaler) { withCPU(10, "10m")(h); memory(h) }), "cpu: 10%/50%, memory: <unknown>/100Mi"},
		{"more than two metrics", hpaObject(t, func(h *autoscalingv2.HorizontalPodAutoscaler) { memory(h); memory(h) }), "cpu: <unknown>/50%, memory: <unknown>/100Mi + 1 more..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := object.FromTyped(hpaKind, tt.hpa)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := printTable(&b, []*pb.Object{o}, false, false); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME   REFERENCE        TARGETS") || !strings.Contains(lines[0], "MINPODS   MAXPODS   REPLICAS   AGE") {
				t.Fatalf("table:\n%s", b.String())
			}
			if !strings.HasPrefix(lines[1], "web    Deployment/web   ") || !strings.Contains(lines[1], tt.want) {
				t.Fatalf("row %q does not hold %q", lines[1], tt.want)
			}
		})
	}
}

func TestDescribeHPA(t *testing.T) {
	h := hpaObject(t, withCPU(73, "73m"))
	w := int32(10)
	h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &w}}
	h.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{
		{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionFalse, Reason: "FailedGetScale", Message: `the HPA controller was unable to get the target's current scale: deployments.apps "web" not found`},
	}
	o, err := object.FromTyped(hpaKind, h)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	describe(&b, o, nil, time.Now())
	out := strings.Join(strings.Fields(b.String()), " ") // columns aside
	for _, want := range []string{
		"Reference: Deployment/web",
		"resource cpu on pods (as a percentage of request): 73% (73m) / 50%",
		"Min replicas: 1 Max replicas: 4",
		"Scale Up: (defaults) Scale Down: Stabilization Window: 10 seconds",
		"Deployment pods: 2 current / 3 desired",
		`AbleToScale False FailedGetScale the HPA controller was unable to get the target's current scale: deployments.apps "web" not found`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe does not show %q:\n%s", want, b.String())
		}
	}
}
