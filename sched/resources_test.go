package sched

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestRequests(t *testing.T) {
	sidecar := corev1.ContainerRestartPolicyAlways
	container := func(req, lim corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	tests := []struct {
		name   string
		pod    *corev1.Pod
		cpu    int64
		memory int64
	}{
		{"nothing", mkPod("p"), 0, 0},
		{"one container", mkPod("p", requests("250m", "64Mi")), 250, 64 << 20},
		{"containers sum", mkPod("p", func(p *corev1.Pod) {
			p.Spec.Containers = []corev1.Container{container(resList("100m", "1Gi"), nil), container(resList("1.5", "512Mi"), nil)}
		}), 1600, 1536 << 20},
		{"limits stand in for missing requests", mkPod("p", limits("2", "1Gi")), 2000, 1 << 30},
		{"a request beats its limit", mkPod("p", requests("1", ""), limits("2", "1Gi")), 1000, 1 << 30},
		{"the largest init container when larger than the containers", mkPod("p", requests("100m", "100Mi"), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{container(resList("1", "10Mi"), nil), container(resList("200m", "50Mi"), nil)}
		}), 1000, 100 << 20},
		{"sidecars run beside containers and later init containers", mkPod("p", requests("100m", ""), func(p *corev1.Pod) {
			s := container(resList("300m", ""), nil)
			s.RestartPolicy = &sidecar
			p.Spec.InitContainers = []corev1.Container{s, container(resList("500m", ""), nil)}
		}), 800, 0},
		{"overhead is added", mkPod("p", requests("100m", "100Mi"), func(p *corev1.Pod) {
			p.Spec.Overhead = resList("50m", "10Mi")
		}), 150, 110 << 20},
		{"pod-level requests replace the containers'", mkPod("p", requests("100m", "100Mi"), func(p *corev1.Pod) {
			p.Spec.Resources = &corev1.ResourceRequirements{Requests: resList("1", "")}
		}), 1000, 100 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := Requests(tt.pod)
			if cpu != tt.cpu || mem != tt.memory {
				t.Errorf("Requests = %dm %d bytes, want %dm %d bytes", cpu, mem, tt.cpu, tt.memory)
			}
		})
	}
}

func TestFits(t *testing.T) {
	tests := []struct {
		name string
		node NodeInfo
		pod  *corev1.Pod
		ok   bool
		why  string
	}{
		{"room", alive(mkNode("a", 1000, 1024), mkPod("x", requests("500m", "512Mi"))), mkPod("p", requests("500m", "512Mi")), true, ""},
		{"cpu", alive(mkNode("a", 1000, 1024), mkPod("x", requests("501m", ""))), mkPod("p", requests("500m", "")), false, ReasonInsufficientCPU},
		{"memory", alive(mkNode("a", 1000, 1024), mkPod("x", requests("", "513Mi"))), mkPod("p", requests("", "512Mi")), false, ReasonInsufficientMemory},
		{"pod count", alive(mkNode("a", 1000, 1024, maxPods(1)), mkPod("x")), mkPod("p"), false, ReasonTooManyPods},
		{"ports come first", alive(mkNode("a", 1000, 1024, maxPods(1)), mkPod("x", port(80, 80, "", ""))), mkPod("p", port(80, 80, "", "")), false, ReasonHostPorts},
		// The state machine re-checks a bind with the pod possibly listed.
		{"the pod itself is counted once", alive(mkNode("a", 1000, 1024, maxPods(1)), mkPod("p", requests("1", "1Gi"), port(80, 80, "", ""))), mkPod("p", requests("1", "1Gi"), port(80, 80, "", "")), true, ""},
		{"failed pods take nothing", alive(mkNode("a", 1000, 1024, maxPods(1)), mkPod("x", requests("1", ""), func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })), mkPod("p", requests("1", "")), true, ""},
		{"allocatable falls back to capacity", alive(mkNode("a", 0, 0, func(n *corev1.Node) {
			n.Status.Capacity, n.Status.Allocatable = resList("1", "1Gi"), nil
		})), mkPod("p", requests("1", "1Gi")), true, ""},
		{"a pod without uid is known by name", alive(mkNode("a", 1000, 1024, maxPods(1)), mkPod("p", func(p *corev1.Pod) { p.UID = "" })), mkPod("p", func(p *corev1.Pod) { p.UID = "" }), true, ""},
		{"memory is reported before extended resources", alive(mkNode("a", 1000, 1024)), mkPod("p", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"example.com/a": resource.MustParse("1"), "example.com/b": resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}
		}), false, ReasonInsufficientMemory},
		{"extended resources by name", alive(mkNode("a", 1000, 1024)), mkPod("p", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"example.com/b": resource.MustParse("1"), "example.com/a": resource.MustParse("1")}
		}), false, "Insufficient example.com/a"},
		{"no node", NodeInfo{}, mkPod("p"), false, ReasonNotReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := Fits(tt.node, tt.pod)
			if ok != tt.ok || why != tt.why {
				t.Errorf("Fits = %v %q, want %v %q", ok, why, tt.ok, tt.why)
			}
		})
	}
}
