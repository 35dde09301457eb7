package kubelet

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Ports: ports}}
	s.Namespace, s.Name = ns, name
	return s
}

func TestServiceEnv(t *testing.T) {
	external := service("web", "ext", "")
	external.Spec.Type, external.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
	tests := []struct {
		name     string
		services []*corev1.Service
		want     []string
	}{
		{name: "none"},
		{
			name: "named ports, as Kubernetes spells them",
			services: []*corev1.Service{service("web", "redis-primary", "10.96.0.11",
				corev1.ServicePort{Name: "redis", Port: 6379},
				corev1.ServicePort{Name: "metrics-udp", Port: 9121, Protocol: corev1.ProtocolUDP})},
			want: []string{
				"REDIS_PRIMARY_SERVICE_HOST=10.96.0.11",
				"REDIS_PRIMARY_SERVICE_PORT=6379",
				"REDIS_PRIMARY_SERVICE_PORT_REDIS=6379",
				"REDIS_PRIMARY_SERVICE_PORT_METRICS_UDP=9121",
				"REDIS_PRIMARY_PORT=tcp://10.96.0.11:6379",
				"REDIS_PRIMARY_PORT_6379_TCP=tcp://10.96.0.11:6379",
				"REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp",
				"REDIS_PRIMARY_PORT_6379_TCP_PORT=6379",
				"REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.96.0.11",
				"REDIS_PRIMARY_PORT_9121_UDP=udp://10.96.0.11:9121",
				"REDIS_PRIMARY_PORT_9121_UDP_PROTO=udp",
				"REDIS_PRIMARY_PORT_9121_UDP_PORT=9121",
				"REDIS_PRIMARY_PORT_9121_UDP_ADDR=10.96.0.11",
			},
		},
		{
			name: "unnamed port, IPv6",
			services: []*corev1.Service{service("web", "db", "fd00::a",
				corev1.ServicePort{Port: 5432, Protocol: corev1.ProtocolTCP})},
			want: []string{
				"DB_SERVICE_HOST=fd00::a",
				"DB_SERVICE_PORT=5432",
				"DB_PORT=tcp://[fd00::a]:5432",
				"DB_PORT_5432_TCP=tcp://[fd00::a]:5432",
				"DB_PORT_5432_TCP_PROTO=tcp",
				"DB_PORT_5432_TCP_PORT=5432",
				"DB_PORT_5432_TCP_ADDR=fd00::a",
			},
		},
		{
			name: "sorted by name; other namespaces, headless, ExternalName and no IP skipped",
			services: []*corev1.Service{
				service("web", "zeta", "10.96.0.3", corev1.ServicePort{Port: 80}),
				service("other", "beta", "10.96.0.4", corev1.ServicePort{Port: 80}),
				service("web", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
				service("web", "pending", "", corev1.ServicePort{Port: 80}),
				external,
				nil,
				service("web", "alpha", "10.96.0.2", corev1.ServicePort{Port: 81}),
			},
			want: []string{
				"ALPHA_SERVICE_HOST=10.96.0.2", "ALPHA_SERVICE_PORT=81", "ALPHA_PORT=tcp://10.96.0.2:81",
				"ALPHA_PORT_81_TCP=tcp://10.96.0.2:81", "ALPHA_PORT_81_TCP_PROTO=tcp", "ALPHA_PORT_81_TCP_PORT=81", "ALPHA_PORT_81_TCP_ADDR=10.96.0.2",
				"ZETA_SERVICE_HOST=10.96.0.3", "ZETA_SERVICE_PORT=80", "ZETA_PORT=tcp://10.96.0.3:80",
				"ZETA_PORT_80_TCP=tcp://10.96.0.3:80", "ZETA_PORT_80_TCP_PROTO=tcp", "ZETA_PORT_80_TCP_PORT=80", "ZETA_PORT_80_TCP_ADDR=10.96.0.3",
			},
		},
		{
			name:     "no ports: the host only",
			services: []*corev1.Service{service("web", "bare", "10.96.0.5")},
			want:     []string{"BARE_SERVICE_HOST=10.96.0.5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serviceEnv("web", tt.services); !slices.Equal(got, tt.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestWithServiceEnv(t *testing.T) {
	tests := []struct {
		name          string
		own, services []string
		want          []string
	}{
		{"no services", []string{"A=1"}, nil, []string{"A=1"}},
		{"services first", []string{"A=1"}, []string{"S_SERVICE_HOST=x"}, []string{"S_SERVICE_HOST=x", "A=1"}},
		{"own value wins", []string{"S_SERVICE_HOST=mine", "A=1"}, []string{"S_SERVICE_HOST=x", "S_SERVICE_PORT=80"},
			[]string{"S_SERVICE_PORT=80", "S_SERVICE_HOST=mine", "A=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := withServiceEnv(tt.own, tt.services); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestContainerSpecDNSAndServices checks what the kubelet hands the driver:
// service env by enableServiceLinks and a resolv.conf by dnsPolicy.
func TestContainerSpecDNSAndServices(t *testing.T) {
	hostFile := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(hostFile, []byte("nameserver 192.0.2.53\nsearch home\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	svcs := []*corev1.Service{service("web", "api", "10.96.0.7", corev1.ServicePort{Port: 8080})}
	no := false
	tests := []struct {
		name       string
		links      *bool
		policy     corev1.DNSPolicy
		server     netip.Addr
		services   func(string) []*corev1.Service
		wantEnv    []string
		wantResolv string
	}{
		{
			name:       "services and cluster DNS",
			server:     netip.MustParseAddr("127.0.0.2"),
			services:   func(ns string) []*corev1.Service { return svcs },
			wantEnv:    []string{"API_SERVICE_HOST=10.96.0.7", "API_SERVICE_PORT=8080", "POD_NS=web"},
			wantResolv: "search web.svc.example.test svc.example.test example.test\nnameserver 127.0.0.2\noptions ndots:5\n",
		},
		{
			name:       "enableServiceLinks false",
			links:      &no,
			server:     netip.MustParseAddr("127.0.0.2"),
			services:   func(ns string) []*corev1.Service { return svcs },
			wantEnv:    []string{"POD_NS=web"},
			wantResolv: "nameserver 127.0.0.2\n",
		},
		{
			name:       "no services hook, cluster DNS off",
			wantEnv:    []string{"POD_NS=web"},
			wantResolv: "search home\nnameserver 192.0.2.53\n",
		},
		{
			name:       "dnsPolicy Default",
			policy:     corev1.DNSDefault,
			server:     netip.MustParseAddr("127.0.0.2"),
			wantEnv:    []string{"POD_NS=web"},
			wantResolv: "search home\nnameserver 192.0.2.53\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := New(Config{Services: tt.services, DNSServer: tt.server, ClusterDomain: "example.test", HostResolvConf: hostFile})
			pod := &corev1.Pod{Spec: corev1.PodSpec{EnableServiceLinks: tt.links, DNSPolicy: tt.policy}}
			pod.Namespace, pod.Name = "web", "p"
			c := &corev1.Container{Name: "c", Env: []corev1.EnvVar{{Name: "POD_NS",
				ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}}
			rs, err := k.containerSpec(pod, c, "10.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.wantEnv {
				if !slices.Contains(rs.Env, want) {
					t.Fatalf("env %q lacks %q", rs.Env, want)
				}
			}
			if tt.services == nil || tt.links != nil {
				if len(rs.Env) != 1 {
					t.Fatalf("env %q, want only the container's", rs.Env)
				}
			}
			if !strings.Contains(string(rs.ResolvConf), tt.wantResolv) {
				t.Fatalf("resolv.conf\n%s\nwant it to contain\n%s", rs.ResolvConf, tt.wantResolv)
			}
		})
	}
}
