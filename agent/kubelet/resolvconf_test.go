package kubelet

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // rendered
	}{
		{"empty", "", ""},
		{"typical", "# generated\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch lan example.com\noptions edns0 trust-ad\n",
			"search lan example.com\nnameserver 10.0.0.2\nnameserver 10.0.0.3\noptions edns0 trust-ad\n"},
		{"comments and unknown lines dropped", "; c\n  # c\ndomain x\nsortlist 1.2.3.4\nnameserver 1.1.1.1\n", "nameserver 1.1.1.1\n"},
		{"last search wins, root dropped", "search a b\nsearch c .\n", "search c\n"},
		{"options accumulate", "options ndots:2\noptions rotate\n", "options ndots:2 rotate\n"},
		{"nameserver without address", "nameserver\nnameserver 9.9.9.9\n", "nameserver 9.9.9.9\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(parseResolvConf([]byte(tt.in)).render()); got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestPodResolvConf(t *testing.T) {
	server := netip.MustParseAddr("10.1.2.3")
	host := resolvConf{Nameservers: []string{"192.168.1.1"}, Searches: []string{"lan"}, Options: []string{"edns0", "ndots:1"}}
	val := func(s string) *string { return &s }
	many := func(n int, f string) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf(f, i))
		}
		return out
	}
	tests := []struct {
		name    string
		spec    corev1.PodSpec
		server  netip.Addr
		want    string
		wantNot string // must not appear
	}{
		{
			name:   "ClusterFirst by default",
			server: server,
			want:   "search web.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.1.2.3\noptions ndots:5\n",
		},
		{
			name:   "ClusterFirst explicit",
			spec:   corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst},
			server: server,
			want:   "search web.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.1.2.3\noptions ndots:5\n",
		},
		{
			name:   "ClusterFirst without cluster DNS falls back to the node's",
			server: netip.Addr{},
			want:   "search lan\nnameserver 192.168.1.1\noptions edns0 ndots:1\n",
		},
		{
			name:   "Default is the node's",
			spec:   corev1.PodSpec{DNSPolicy: corev1.DNSDefault},
			server: server,
			want:   "search lan\nnameserver 192.168.1.1\noptions edns0 ndots:1\n",
		},
		{
			name:   "ClusterFirst with hostNetwork is the node's",
			spec:   corev1.PodSpec{HostNetwork: true},
			server: server,
			want:   "search lan\nnameserver 192.168.1.1\noptions edns0 ndots:1\n",
		},
		{
			name:   "ClusterFirstWithHostNet with hostNetwork",
			spec:   corev1.PodSpec{HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet},
			server: server,
			want:   "search web.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.1.2.3\noptions ndots:5\n",
		},
		{
			name:   "ClusterFirstWithHostNet without hostNetwork",
			spec:   corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirstWithHostNet},
			server: server,
			want:   "search web.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.1.2.3\noptions ndots:5\n",
		},
		{
			name: "None takes dnsConfig only",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{"8.8.8.8"}, Searches: []string{"a.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: val("2")}, {Name: "rotate"}}}},
			server: server,
			want:   "search a.example\nnameserver 8.8.8.8\noptions ndots:2 rotate\n",
		},
		{
			name: "dnsConfig merged on ClusterFirst",
			spec: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{"10.1.2.3", "8.8.8.8"}, Searches: []string{"svc.cluster.local", "x.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: val("1")}, {Name: "edns0", Value: val("")}}}},
			server: server,
			want: "search web.svc.cluster.local svc.cluster.local cluster.local x.example\n" +
				"nameserver 10.1.2.3\nnameserver 8.8.8.8\noptions ndots:1 edns0\n",
		},
		{
			name: "dnsConfig merged on Default",
			spec: corev1.PodSpec{DNSPolicy: corev1.DNSDefault, DNSConfig: &corev1.PodDNSConfig{
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: val("3")}}}},
			server: server,
			want:   "search lan\nnameserver 192.168.1.1\noptions edns0 ndots:3\n",
		},
		{
			name: "nameservers trimmed to three",
			spec: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}}},
			server:  server,
			want:    "nameserver 10.1.2.3\nnameserver 1.1.1.1\nnameserver 2.2.2.2\noptions",
			wantNot: "3.3.3.3",
		},
		{
			name:    "searches trimmed to 32",
			spec:    corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: many(40, "d%d.example")}},
			server:  server,
			want:    " d31.example\n",
			wantNot: "d32.example",
		},
		{
			name:    "searches trimmed to 2048 characters",
			spec:    corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: many(10, "%d"+strings.Repeat("x", 250))}},
			server:  server,
			want:    " 7xxx",
			wantNot: " 8xxx",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: tt.spec}
			pod.Namespace = "web"
			got := string(podResolvConf(pod, tt.server, "cluster.local", host).render())
			if !strings.Contains(got, tt.want) || (tt.wantNot != "" && strings.Contains(got, tt.wantNot)) {
				t.Fatalf("got\n%s\nwant it to contain %q and not %q", got, tt.want, tt.wantNot)
			}
			if strings.HasPrefix(tt.want, "search") && got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
			if host.Options[1] != "ndots:1" {
				t.Fatal("podResolvConf changed the node's resolv.conf")
			}
		})
	}
}
