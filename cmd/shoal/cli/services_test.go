package cli

//lint:file-ignore SA1019 get endpoints prints core/v1 Endpoints, the shape kubectl users read; Kubernetes still serves it beside EndpointSlice.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func svcWith(name string, spec corev1.ServiceSpec) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: spec}
}

func TestServiceRow(t *testing.T) {
	tcp80 := []corev1.ServicePort{{Name: "http", Port: 80}}
	tests := []struct {
		name string
		svc  *corev1.Service
		want string // NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S), joined by |
	}{
		{"cluster ip", svcWith("web", corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: tcp80}),
			"web|ClusterIP|10.96.0.10|<none>|80/TCP"},
		{"clusterIPs win, two ports, udp", svcWith("dns", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"}, Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 53, Protocol: corev1.ProtocolTCP}}}),
			"dns|ClusterIP|10.96.0.10|<none>|53/UDP,53/TCP"},
		{"external ips", svcWith("web", corev1.ServiceSpec{ClusterIP: "10.96.0.11", ExternalIPs: []string{"192.0.2.1", "192.0.2.2"}, Ports: tcp80}),
			"web|ClusterIP|10.96.0.11|192.0.2.1,192.0.2.2|80/TCP"},
		{"node port", svcWith("np", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.12",
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}, {Port: 443, NodePort: 30443}}}),
			"np|NodePort|10.96.0.12|<none>|80:30080/TCP,443:30443/TCP"},
		{"load balancer pending", svcWith("lb", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.13",
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 31000}}}),
			"lb|LoadBalancer|10.96.0.13|<pending>|80:31000/TCP"},
		{"load balancer with external ips", svcWith("lb", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.13",
			ExternalIPs: []string{"192.0.2.9"}, Ports: []corev1.ServicePort{{Port: 80, NodePort: 31000}}}),
			"lb|LoadBalancer|10.96.0.13|192.0.2.9|80:31000/TCP"},
		{"headless", svcWith("db", corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Port: 5432}}}),
			"db|ClusterIP|None|<none>|5432/TCP"},
		{"external name", svcWith("ext", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.org"}),
			"ext|ExternalName|<none>|db.example.org|<none>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(serviceRow(tt.svc, false), "|"); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("long ingress list is cut unless wide", func(t *testing.T) {
		s := svcWith("lb", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer})
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.100"}, {IP: "192.0.2.101"}}
		if got := serviceExternalIP(s, false); got != "192.0.2.100,1..." {
			t.Fatalf("narrow: %q", got)
		}
		if got := serviceExternalIP(s, true); got != "192.0.2.100,192.0.2.101" {
			t.Fatalf("wide: %q", got)
		}
	})
}

func TestPrintTableServices(t *testing.T) {
	now := time.Now()
	svc := svcWith("web", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10",
		Selector: map[string]string{"tier": "fe", "app": "web"}, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}})
	o, err := object.FromTyped("Service", svc)
	if err != nil {
		t.Fatal(err)
	}
	o.CreateTimeUnixNano = now.Add(-2 * time.Minute).UnixNano()
	var buf bytes.Buffer
	if err := printTable(&buf, []*pb.Object{o}, true, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("table %q", buf.String())
	}
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR" {
		t.Fatalf("header %q", got)
	}
	if got := strings.Join(strings.Fields(lines[1]), " "); got != "web NodePort 10.96.0.10 <none> 80:30080/TCP 2m app=web,tier=fe" {
		t.Fatalf("row %q", got)
	}
}

// testPod is a pod of app=web on node n1, Running and Ready unless ready is
// false, serving container port 8080 named http.
func testPod(name, ns, ip string, ready bool) *corev1.Pod {
	cond := corev1.ConditionTrue
	if !ready {
		cond = corev1.ConditionFalse
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}}},
	}
}

func TestEndpointsOf(t *testing.T) {
	created := metav1.NewTime(time.Unix(1700000000, 0))
	svc := svcWith("web", corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
		Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9100)},
		}})
	svc.Labels = map[string]string{"team": "a"}
	svc.CreationTimestamp = created
	noHTTP := testPod("c-nohttp", "default", "10.0.0.3", true)
	noHTTP.Spec.Containers[0].Ports = nil
	unbound := testPod("d-unbound", "default", "10.0.0.4", true)
	unbound.Spec.NodeName = ""
	pods := []*corev1.Pod{
		testPod("b-ready", "default", "10.0.0.20", true),
		testPod("a-ready", "default", "10.0.0.3", true),
		testPod("e-starting", "default", "10.0.0.5", false),
		noHTTP, unbound,
		testPod("f-other-ns", "other", "10.0.0.6", true),
	}
	node := "n1"
	addr := func(ip, pod string) corev1.EndpointAddress {
		return corev1.EndpointAddress{IP: ip, NodeName: &node,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod, UID: types.UID("uid-" + pod)}}
	}
	tests := []struct {
		name            string
		publishNotReady bool
		want            []corev1.EndpointSubset
	}{
		{"ready and not ready", false, []corev1.EndpointSubset{
			{
				Addresses:         []corev1.EndpointAddress{addr("10.0.0.3", "a-ready"), addr("10.0.0.20", "b-ready")},
				NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.5", "e-starting")},
				Ports:             []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}, {Name: "metrics", Port: 9100, Protocol: "TCP"}},
			},
			{ // the pod without a port named http serves only metrics
				Addresses: []corev1.EndpointAddress{addr("10.0.0.3", "c-nohttp")},
				Ports:     []corev1.EndpointPort{{Name: "metrics", Port: 9100, Protocol: "TCP"}},
			},
		}},
		{"publishNotReadyAddresses", true, []corev1.EndpointSubset{
			{
				Addresses: []corev1.EndpointAddress{addr("10.0.0.3", "a-ready"), addr("10.0.0.5", "e-starting"), addr("10.0.0.20", "b-ready")},
				Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}, {Name: "metrics", Port: 9100, Protocol: "TCP"}},
			},
			{
				Addresses: []corev1.EndpointAddress{addr("10.0.0.3", "c-nohttp")},
				Ports:     []corev1.EndpointPort{{Name: "metrics", Port: 9100, Protocol: "TCP"}},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := svc.DeepCopy()
			s.Spec.PublishNotReadyAddresses = tt.publishNotReady
			ep := endpointsOf(s, pods)
			if ep.Kind != "Endpoints" || ep.APIVersion != "v1" || ep.Name != "web" || ep.Namespace != "default" ||
				ep.Labels["team"] != "a" || !ep.CreationTimestamp.Equal(&created) {
				t.Fatalf("metadata %+v %+v", ep.TypeMeta, ep.ObjectMeta)
			}
			got, _ := json.Marshal(ep.Subsets)
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Fatalf("subsets\ngot  %s\nwant %s", got, want)
			}
		})
	}
	t.Run("headless without ports lists addresses with no ports", func(t *testing.T) {
		s := svcWith("db", corev1.ServiceSpec{ClusterIP: "None", Selector: map[string]string{"app": "web"}})
		ep := endpointsOf(s, pods[:2])
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Ports) != 0 || len(ep.Subsets[0].Addresses) != 2 {
			t.Fatalf("subsets %+v", ep.Subsets)
		}
		if got := formatEndpoints(ep, nil, false); got != "10.0.0.3,10.0.0.20" {
			t.Fatalf("ENDPOINTS %q", got)
		}
	})
	t.Run("no selector, no endpoints", func(t *testing.T) {
		ep := endpointsOf(svcWith("manual", corev1.ServiceSpec{ClusterIP: "10.96.0.20"}), pods)
		if ep.Subsets != nil || formatEndpoints(ep, nil, false) != "<none>" {
			t.Fatalf("subsets %+v", ep.Subsets)
		}
	})
}

func TestFormatEndpoints(t *testing.T) {
	var ready, notReady []corev1.EndpointAddress
	for i := range 5 {
		ready = append(ready, corev1.EndpointAddress{IP: fmt.Sprintf("10.0.0.%d", i+1)})
	}
	notReady = append(notReady, corev1.EndpointAddress{IP: "10.0.1.1"})
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Addresses: ready, NotReadyAddresses: notReady,
		Ports: []corev1.EndpointPort{{Name: "http", Port: 8080}, {Name: "grpc", Port: 9090}}}}}
	http, none := "http", "nope"
	tests := []struct {
		name     string
		port     *string
		notReady bool
		want     string
	}{
		{"all ports, first three then a count", nil, false, "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 7 more..."},
		{"one port", &http, false, "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more..."},
		{"not ready", nil, true, "10.0.1.1:8080,10.0.1.1:9090"},
		{"no such port", &none, false, "<none>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatEndpoints(ep, tt.port, tt.notReady); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := formatEndpoints(&corev1.Endpoints{Subsets: []corev1.EndpointSubset{{NotReadyAddresses: notReady}}}, nil, false); got != "<none>" {
		t.Fatalf("only not-ready addresses: %q", got)
	}
}

func TestPrintEndpoints(t *testing.T) {
	now := time.Unix(1700000300, 0)
	svc := svcWith("web", corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}})
	svc.CreationTimestamp = metav1.NewTime(time.Unix(1700000000, 0))
	pods := []*corev1.Pod{testPod("a", "default", "10.0.0.1", true), testPod("b", "default", "10.0.0.2", false)}
	eps := []*corev1.Endpoints{endpointsOf(svc, pods), endpointsOf(svcWith("empty", corev1.ServiceSpec{}), nil)}

	t.Run("wide table", func(t *testing.T) {
		var buf bytes.Buffer
		if err := printEndpoints(&buf, eps, "wide", false, true, now); err != nil {
			t.Fatal(err)
		}
		want := []string{"NAMESPACE NAME ENDPOINTS AGE NOT-READY", "default web 10.0.0.1:8080 5m 10.0.0.2:8080", "default empty <none> <unknown> <none>"}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		for i, l := range lines {
			lines[i] = strings.Join(strings.Fields(l), " ")
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("json of one is an Endpoints object", func(t *testing.T) {
		var buf bytes.Buffer
		if err := printEndpoints(&buf, eps[:1], "json", true, false, now); err != nil {
			t.Fatal(err)
		}
		var got corev1.Endpoints
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		ss := got.Subsets
		if got.Kind != "Endpoints" || got.Name != "web" || len(ss) != 1 || len(ss[0].Addresses) != 1 ||
			ss[0].Addresses[0].TargetRef.Name != "a" || *ss[0].Addresses[0].NodeName != "n1" ||
			len(ss[0].NotReadyAddresses) != 1 || ss[0].Ports[0].Port != 8080 {
			t.Fatalf("endpoints %s", buf.String())
		}
	})
	t.Run("json of several is a List", func(t *testing.T) {
		var buf bytes.Buffer
		if err := printEndpoints(&buf, eps, "json", false, false, now); err != nil {
			t.Fatal(err)
		}
		var list struct {
			Kind  string             `json:"kind"`
			Items []corev1.Endpoints `json:"items"`
		}
		if err := json.Unmarshal(buf.Bytes(), &list); err != nil || list.Kind != "List" || len(list.Items) != 2 {
			t.Fatalf("%v\n%s", err, buf.String())
		}
	})
	t.Run("yaml", func(t *testing.T) {
		var buf bytes.Buffer
		if err := printEndpoints(&buf, eps[:1], "yaml", true, false, now); err != nil {
			t.Fatal(err)
		}
		var got corev1.Endpoints
		if err := yaml.UnmarshalStrict(buf.Bytes(), &got); err != nil || got.Subsets[0].Addresses[0].IP != "10.0.0.1" {
			t.Fatalf("%v\n%s", err, buf.String())
		}
	})
	t.Run("name", func(t *testing.T) {
		var buf bytes.Buffer
		if err := printEndpoints(&buf, eps, "name", false, false, now); err != nil {
			t.Fatal(err)
		}
		if buf.String() != "endpoints/web\nendpoints/empty\n" {
			t.Fatalf("%q", buf.String())
		}
	})
}

func TestDescribeService(t *testing.T) {
	svc := svcWith("web", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10",
		ExternalIPs: []string{"192.0.2.1"}, Selector: map[string]string{"app": "web"},
		SessionAffinity: corev1.ServiceAffinityClientIP,
		Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), NodePort: 30080},
			{Port: 9090},
		}})
	pods := []*corev1.Pod{testPod("a", "default", "10.0.0.1", true), testPod("b", "default", "10.0.0.2", true)}
	var buf bytes.Buffer
	describeService(&buf, svc, endpointsOf(svc, pods))
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		"Selector: app=web",
		"Type: NodePort",
		"IP: 10.96.0.10",
		"IPs: 10.96.0.10",
		"External IPs: 192.0.2.1",
		"Port: http 80/TCP",
		"TargetPort: http/TCP",
		"NodePort: http 30080/TCP",
		"Endpoints: 10.0.0.1:8080,10.0.0.2:8080",
		"Port: <unset> 9090/TCP",
		"TargetPort: 9090/TCP",
		"Endpoints: 10.0.0.1:9090,10.0.0.2:9090",
		"Session Affinity: ClientIP",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestEndpointsArgs(t *testing.T) {
	tests := []struct {
		args  []string
		names string
		ok    bool
		err   string
	}{
		{[]string{"ep"}, "", true, ""},
		{[]string{"Endpoints", "a", "b"}, "a b", true, ""},
		{[]string{"endpoint/a", "ep/b"}, "a b", true, ""},
		{[]string{"ep/a", "svc/b"}, "", true, "cannot be mixed"},
		{[]string{"svc", "a"}, "", false, ""},
		{[]string{"svc/a"}, "", false, ""},
		{nil, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			names, ok, err := endpointsArgs(tt.args)
			if ok != tt.ok || strings.Join(names, " ") != tt.names || (err == nil) != (tt.err == "") ||
				(err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("got %q %v %v", names, ok, err)
			}
		})
	}
}
