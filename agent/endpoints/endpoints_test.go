package endpoints

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(name, ns, node, ip string, phase corev1.PodPhase, ready bool, lbl map[string]string) *corev1.Pod {
	p := &corev1.Pod{}
	p.Name, p.Namespace, p.Labels = name, ns, lbl
	p.Spec.NodeName = node
	p.Spec.Containers = []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP}}}}
	p.Status.Phase, p.Status.PodIP = phase, ip
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func TestFor(t *testing.T) {
	web := map[string]string{"app": "web"}
	svc := &corev1.Service{}
	svc.Name, svc.Namespace = "web", "default"
	svc.Spec.Selector = web
	svc.Spec.Ports = []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		{Name: "metrics", Port: 9090},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
		{Name: "admin", Port: 81, TargetPort: intstr.FromInt32(8081)},
		{Name: "missing", Port: 82, TargetPort: intstr.FromString("nope")},
	}
	host := pod("b", "default", "n2", "10.0.0.2", corev1.PodRunning, true, web)
	host.Spec.Hostname, host.Spec.Subdomain = "b0", "web"
	pods := []*corev1.Pod{
		pod("c", "default", "n1", "10.0.0.3", corev1.PodRunning, false, web),
		host,
		pod("a", "default", "n1", "10.0.0.1", corev1.PodRunning, true, web),
		pod("other-ns", "prod", "n1", "10.0.0.4", corev1.PodRunning, true, web),
		pod("other-app", "default", "n1", "10.0.0.5", corev1.PodRunning, true, map[string]string{"app": "db"}),
		pod("pending", "default", "", "", corev1.PodPending, false, web),
		pod("done", "default", "n1", "10.0.0.6", corev1.PodSucceeded, false, web),
	}
	got := For(svc, pods)
	var summary []string
	for _, e := range got {
		summary = append(summary, fmt.Sprintf("%s@%s/%s ready=%v host=%q", e.PodName, e.IP, e.NodeName, e.Ready, e.Hostname))
	}
	want := `[a@10.0.0.1/n1 ready=true host="" b@10.0.0.2/n2 ready=true host="b0" c@10.0.0.3/n1 ready=false host=""]`
	if fmt.Sprint(summary) != want {
		t.Fatalf("endpoints\n got %v\nwant %s", summary, want)
	}
	var targets []int32
	for _, p := range got[0].Ports {
		targets = append(targets, p.Target)
	}
	if fmt.Sprint(targets) != "[8080 9090 5353 8081 0]" {
		t.Fatalf("targets = %v, want [8080 9090 5353 8081 0] (named, unset, named UDP, number, missing name)", targets)
	}
	if got[0].Ports[2].Protocol != corev1.ProtocolUDP || got[0].Ports[1].Protocol != corev1.ProtocolTCP {
		t.Fatalf("protocols = %+v", got[0].Ports)
	}

	// No selector, or ExternalName: no endpoints.
	bare := svc.DeepCopy()
	bare.Spec.Selector = nil
	if e := For(bare, pods); e != nil {
		t.Fatalf("a service without selector has endpoints %v", e)
	}
	ext := svc.DeepCopy()
	ext.Spec.Type = corev1.ServiceTypeExternalName
	if e := For(ext, pods); e != nil {
		t.Fatalf("an ExternalName service has endpoints %v", e)
	}
}
