package manifest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/shoal-dev/shoal/object"
)

// hpaDoc is a HorizontalPodAutoscaler using every field Shoal implements; it
// also seeds the fuzzer.
const hpaDoc = `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 100Mi}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 60
      selectPolicy: Min
      policies: [{type: Pods, value: 1, periodSeconds: 30}, {type: Percent, value: 50, periodSeconds: 60}]
    scaleUp:
      stabilizationWindowSeconds: 0
      policies: [{type: Percent, value: 100, periodSeconds: 15}]
status:
  currentReplicas: 2
  desiredReplicas: 2
`

func TestDecodeHPA(t *testing.T) {
	objs, err := Decode(Source{Name: "hpa.yaml", Data: []byte(hpaDoc)})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || object.KeyOf(objs[0]) != "HorizontalPodAutoscaler/default/web" || len(objs[0].Status) != 0 {
		t.Fatalf("decoded %v", objs)
	}
	var h autoscalingv2.HorizontalPodAutoscaler
	if err := object.Decode(objs[0], &h); err != nil {
		t.Fatal(err)
	}
	s := h.Spec
	if s.ScaleTargetRef.Name != "web" || *s.MinReplicas != 2 || s.MaxReplicas != 10 || len(s.Metrics) != 2 ||
		*s.Metrics[0].Resource.Target.AverageUtilization != 50 || s.Metrics[1].Resource.Target.AverageValue.String() != "100Mi" ||
		*s.Behavior.ScaleDown.SelectPolicy != autoscalingv2.MinChangePolicySelect || len(s.Behavior.ScaleDown.Policies) != 2 {
		t.Fatalf("spec = %+v", s)
	}
	// What the controller reads and writes back unchanged is what was stored.
	back, err := object.FromTyped("HorizontalPodAutoscaler", &h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Spec, objs[0].Spec) {
		t.Fatalf("round trip changed the spec:\n%s\n%s", objs[0].Spec, back.Spec)
	}
	if err := ValidateObject(back); err != nil {
		t.Fatal(err)
	}

	// The smallest HPA: a target and a maximum (metrics default to cpu 80%).
	min := "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: rs}\nspec:\n  scaleTargetRef: {kind: ReplicaSet, name: cache}\n  maxReplicas: 1\n"
	if _, err := Decode(Source{Name: "min.yaml", Data: []byte(min)}); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeBadHPA(t *testing.T) {
	const head = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n"
	const target = "  scaleTargetRef: {kind: Deployment, name: web}\n"
	const cpu50 = "  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]\n"
	tests := []struct {
		name string
		spec string
		path string
		msg  string // prefix of Error.Msg
	}{
		{"StatefulSet target", "  scaleTargetRef: {kind: StatefulSet, name: db}\n  maxReplicas: 3\n",
			"spec.scaleTargetRef.kind", `"StatefulSet": not supported; supported values: "Deployment", "ReplicaSet"`},
		{"no target kind", "  scaleTargetRef: {name: web}\n  maxReplicas: 3\n", "spec.scaleTargetRef.kind", "required"},
		{"no target name", "  scaleTargetRef: {kind: Deployment}\n  maxReplicas: 3\n", "spec.scaleTargetRef.name", "required"},
		{"bad target name", "  scaleTargetRef: {kind: Deployment, name: Web_1}\n  maxReplicas: 3\n", "spec.scaleTargetRef.name", `"Web_1": a lowercase RFC 1123 subdomain`},
		{"target apiVersion", "  scaleTargetRef: {apiVersion: apps/v1beta1, kind: Deployment, name: web}\n  maxReplicas: 3\n",
			"spec.scaleTargetRef.apiVersion", `"apps/v1beta1": not supported; supported values: "apps/v1"`},
		{"unknown target field", "  scaleTargetRef: {kind: Deployment, name: web, namespace: x}\n  maxReplicas: 3\n", "spec.scaleTargetRef.namespace", "unknown field"},
		{"min zero", target + "  minReplicas: 0\n  maxReplicas: 3\n", "spec.minReplicas", "0: must be greater than or equal to 1"},
		{"no max", target, "spec.maxReplicas", "0: must be greater than or equal to 1"},
		{"max below min", target + "  minReplicas: 4\n  maxReplicas: 3\n", "spec.maxReplicas", "3: must be greater than or equal to minReplicas (4)"},
		{"max not a number", target + "  maxReplicas: many\n", "spec.maxReplicas", "must be an integer, not a string"},
		{"Pods metric", target + "  maxReplicas: 3\n  metrics: [{type: Pods, pods: {metric: {name: qps}, target: {type: AverageValue, averageValue: 1k}}}]\n",
			"spec.metrics[0].pods", "not supported"},
		{"External metric type", target + "  maxReplicas: 3\n  metrics: [{type: External}]\n",
			"spec.metrics[0].type", `"External": not supported; supported values: "Resource"`},
		{"no metric type", target + "  maxReplicas: 3\n  metrics: [{resource: {name: cpu, target: {type: Utilization, averageUtilization: 5}}}]\n",
			"spec.metrics[0].type", "required"},
		{"Resource without resource", target + "  maxReplicas: 3\n  metrics: [{type: Resource}]\n", "spec.metrics[0].resource", "required when type is Resource"},
		{"GPU resource", target + "  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: nvidia.com/gpu, target: {type: Utilization, averageUtilization: 5}}}]\n",
			"spec.metrics[0].resource.name", `"nvidia.com/gpu": not supported; supported values: "cpu", "memory"`},
		{"Value target", target + "  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Value, value: 1}}}]\n",
			"spec.metrics[0].resource.target.value", "not supported"},
		{"Value target type", target + "  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Value}}}]\n",
			"spec.metrics[0].resource.target.type", `"Value": not supported; supported values: "Utilization", "AverageValue"`},
		{"utilization zero", target + "  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 0}}}]\n",
			"spec.metrics[0].resource.target.averageUtilization", "0: must be greater than or equal to 1"},
		{"utilization missing", target + "  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization}}}]\n",
			"spec.metrics[0].resource.target.averageUtilization", "required when type is Utilization"},
		{"both targets", target + "  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 5, averageValue: 1}}}]\n",
			"spec.metrics[0].resource.target.averageValue", "may not be set when type is Utilization"},
		{"average value zero", target + "  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: memory, target: {type: AverageValue, averageValue: 0}}}]\n",
			"spec.metrics[0].resource.target.averageValue", `"0": must be greater than 0`},
		{"average value not a quantity", target + "  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: memory, target: {type: AverageValue, averageValue: lots}}}]\n",
			"spec.metrics[0].resource.target.averageValue", `"lots" is not a valid quantity`},
		{"window too long", target + "  maxReplicas: 3\n" + cpu50 + "  behavior: {scaleDown: {stabilizationWindowSeconds: 3601}}\n",
			"spec.behavior.scaleDown.stabilizationWindowSeconds", "3601: must be less than or equal to 3600"},
		{"window negative", target + "  maxReplicas: 3\n" + cpu50 + "  behavior: {scaleUp: {stabilizationWindowSeconds: -1}}\n",
			"spec.behavior.scaleUp.stabilizationWindowSeconds", "-1: must be greater than or equal to 0"},
		{"select policy", target + "  maxReplicas: 3\n" + cpu50 + "  behavior: {scaleUp: {selectPolicy: Fastest}}\n",
			"spec.behavior.scaleUp.selectPolicy", `"Fastest": not supported; supported values: "Max", "Min", "Disabled"`},
		{"policy type", target + "  maxReplicas: 3\n" + cpu50 + "  behavior: {scaleDown: {policies: [{type: Nodes, value: 1, periodSeconds: 15}]}}\n",
			"spec.behavior.scaleDown.policies[0].type", `"Nodes": not supported; supported values: "Pods", "Percent"`},
		{"policy value", target + "  maxReplicas: 3\n" + cpu50 + "  behavior: {scaleDown: {policies: [{type: Pods, value: 1, periodSeconds: 15}, {type: Pods, value: 0, periodSeconds: 15}]}}\n",
			"spec.behavior.scaleDown.policies[1].value", "0: must be greater than 0"},
		{"policy period", target + "  maxReplicas: 3\n" + cpu50 + "  behavior: {scaleUp: {policies: [{type: Percent, value: 10, periodSeconds: 1801}]}}\n",
			"spec.behavior.scaleUp.policies[0].periodSeconds", "1801: must be less than or equal to 1800"},
		{"tolerance", target + "  maxReplicas: 3\n" + cpu50 + "  behavior: {scaleUp: {tolerance: 0.05}}\n",
			"spec.behavior.scaleUp.tolerance", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode(Source{Name: "hpa.yaml", Data: []byte(head + tt.spec)})
			if err == nil {
				t.Fatalf("Decode succeeded with %v; want an error", objs)
			}
			t.Log(err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.File != "hpa.yaml" || e.Doc != 1 || e.Path != tt.path || !strings.HasPrefix(e.Msg, tt.msg) {
				t.Fatalf("error = %#v\nwant Path %q, Msg starting %q", e, tt.path, tt.msg)
			}
		})
	}
}
