package proxy

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shoal-dev/shoal/agent/endpoints"
	"github.com/shoal-dev/shoal/object/manifest"
)

func TestBuild(t *testing.T) {
	timeout := int32(60)
	web := &corev1.Service{}
	web.Name, web.Namespace = "web", "default"
	web.Annotations = map[string]string{manifest.AnnotationWeights: "version: v1=9, v2=1", manifest.AnnotationLoadBalancer: manifest.LeastConnections}
	web.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10", ExternalIPs: []string{"203.0.113.5"},
		Selector: map[string]string{"app": "web"}, SessionAffinity: corev1.ServiceAffinityClientIP,
		SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}},
		Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), NodePort: 30080},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		}}
	headless := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}}
	ext := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "x.example.org"}}
	notReady := &corev1.Service{}
	notReady.Name, notReady.Namespace = "nr", "default"
	notReady.Spec = corev1.ServiceSpec{ClusterIP: "10.96.0.11", PublishNotReadyAddresses: true, Ports: []corev1.ServicePort{{Port: 80}}}

	ep := func(ip, pod, version string, ready bool, http int32) endpoints.Endpoint {
		return endpoints.Endpoint{IP: netip.MustParseAddr(ip), PodName: pod, Ready: ready, Labels: map[string]string{"version": version},
			Ports: []endpoints.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, Target: http}, {Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, Target: 53}}}
	}
	eps := func(s *corev1.Service) []endpoints.Endpoint {
		switch s.Name {
		case "web":
			return []endpoints.Endpoint{ep("10.1.0.3", "c", "v2", true, 8080), ep("10.1.0.1", "a", "v1", true, 8080),
				ep("10.1.0.2", "b", "v1", false, 8080), ep("10.1.0.4", "d", "v1", true, 0)}
		case "nr":
			return []endpoints.Endpoint{{IP: netip.MustParseAddr("10.1.0.9"), PodName: "n", Ready: false,
				Ports: []endpoints.Port{{Port: 80, Target: 80, Protocol: corev1.ProtocolTCP}}}}
		}
		return nil
	}
	node := []netip.Addr{netip.MustParseAddr("192.168.1.2"), netip.MustParseAddr("192.168.1.3")}
	ports := Build(node, []*corev1.Service{web, headless, ext, notReady}, eps)
	if len(ports) != 3 {
		t.Fatalf("got %d ports, want web:http, web:dns, nr (headless and ExternalName have none): %+v", len(ports), ports)
	}
	http, dns, nr := ports[0], ports[1], ports[2]
	wantFE := []string{"10.96.0.10:80", "192.168.1.2:30080", "192.168.1.3:30080", "203.0.113.5:80"}
	var gotFE []string
	for _, f := range http.Frontends {
		gotFE = append(gotFE, f.String())
	}
	if !slices.Equal(gotFE, wantFE) || http.Proto != corev1.ProtocolTCP || http.Key() != "default/web:http/TCP" {
		t.Fatalf("http frontends %v (%s), want %v", gotFE, http.Key(), wantFE)
	}
	// b is not Ready; d has no container port named http.
	want := []Backend{{Addr: netip.MustParseAddrPort("10.1.0.1:8080"), Pod: "a", Group: "v1"}, {Addr: netip.MustParseAddrPort("10.1.0.3:8080"), Pod: "c", Group: "v2"}}
	if !slices.Equal(http.Backends, want) {
		t.Fatalf("http backends %v, want %v", http.Backends, want)
	}
	if http.Policy != manifest.LeastConnections || http.Affinity != time.Minute || http.Weights == nil || http.Weights.Label != "version" {
		t.Fatalf("http options: %+v", http)
	}
	if dns.Proto != corev1.ProtocolUDP || len(dns.Frontends) != 2 || dns.Frontends[0].String() != "10.96.0.10:53" || len(dns.Backends) != 3 {
		t.Fatalf("dns port: %+v", dns)
	}
	if len(nr.Backends) != 1 || nr.Policy != manifest.RoundRobin || nr.Affinity != 0 {
		t.Fatalf("publishNotReadyAddresses service: %+v", nr)
	}
}

func TestBuildRoutesOnHTTPPortsOnly(t *testing.T) {
	httpProto := "http"
	s := &corev1.Service{}
	s.Name, s.Namespace = "ab", "default"
	s.Annotations = map[string]string{manifest.AnnotationRoutes: "header X-Group=beta -> track=b"}
	s.Spec = corev1.ServiceSpec{ClusterIP: "10.96.0.12", Ports: []corev1.ServicePort{
		{Name: "web", Port: 80, AppProtocol: &httpProto},
		{Name: "raw", Port: 9000},
	}}
	eps := func(*corev1.Service) []endpoints.Endpoint {
		return []endpoints.Endpoint{{IP: netip.MustParseAddr("10.1.0.1"), PodName: "p", Ready: true, Labels: map[string]string{"track": "b"},
			Ports: []endpoints.Port{{Port: 80, Target: 8080, Protocol: corev1.ProtocolTCP}, {Port: 9000, Target: 9000, Protocol: corev1.ProtocolTCP}}}}
	}
	ports := Build(nil, []*corev1.Service{s}, eps)
	if len(ports) != 2 || ports[0].Routes == nil || ports[0].Routes.Label != "track" || ports[0].Backends[0].Route != "b" {
		t.Fatalf("appProtocol http port: %+v", ports[0])
	}
	if ports[1].Routes != nil || ports[1].Backends[0].Route != "" {
		t.Fatalf("a port without appProtocol http is plain TCP: %+v", ports[1])
	}
}
