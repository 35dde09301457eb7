package servicelb

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/controller"
)

func node(name, ip string, ready corev1.ConditionStatus) *corev1.Node {
	n := &corev1.Node{}
	n.Name = name
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
	return n
}

func TestReconcile(t *testing.T) {
	nodes := []*corev1.Node{node("c", "10.0.0.3", corev1.ConditionTrue), node("a", "10.0.0.10", corev1.ConditionTrue),
		node("b", "10.0.0.2", corev1.ConditionFalse)}
	lb := &corev1.Service{}
	lb.Name, lb.Namespace, lb.ResourceVersion = "web", "default", "7"
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	w := Reconcile(lb, nodes)
	if len(w) != 1 || w[0].Action != controller.UpdateStatus || w[0].Object.GetResourceVersion() != "7" {
		t.Fatalf("writes %v", w)
	}
	got := w[0].Object.(*corev1.Service).Status.LoadBalancer.Ingress
	if len(got) != 2 || got[0].IP != "10.0.0.3" || got[1].IP != "10.0.0.10" {
		t.Fatalf("ingress %v, want the Ready nodes 10.0.0.3 and 10.0.0.10 in address order", got)
	}
	if lb.Status.LoadBalancer.Ingress != nil {
		t.Fatal("input modified")
	}
	// Applied: nothing more to do.
	if w := Reconcile(w[0].Object.(*corev1.Service), nodes); len(w) != 0 {
		t.Fatalf("second pass wrote %v", w)
	}
	// No longer a LoadBalancer: the ingress is cleared.
	done := w[0].Object.(*corev1.Service).DeepCopy()
	done.Spec.Type = corev1.ServiceTypeNodePort
	if w := Reconcile(done, nodes); len(w) != 1 || len(w[0].Object.(*corev1.Service).Status.LoadBalancer.Ingress) != 0 {
		t.Fatalf("type changed: %v", w)
	}
	cluster := &corev1.Service{}
	if w := Reconcile(cluster, nodes); len(w) != 0 {
		t.Fatalf("ClusterIP service got %v", w)
	}
}
