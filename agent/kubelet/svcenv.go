package kubelet

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
)

// StoreServices returns a Config.Services that lists the services of a
// namespace from store, the local replica. Undecodable ones are skipped.
func StoreServices(store *state.Store) func(namespace string) []*corev1.Service {
	return func(namespace string) []*corev1.Service {
		if namespace == "" {
			return nil // List would return every namespace's
		}
		objs, _ := store.List("Service", namespace, nil)
		out := make([]*corev1.Service, 0, len(objs))
		for _, o := range objs {
			s := &corev1.Service{}
			if err := object.Decode(o, s); err == nil {
				out = append(out, s)
			}
		}
		return out
	}
}

// serviceEnv returns the environment variables Kubernetes' kubelet gives a
// container for the services of its namespace (pkg/kubelet/envvars), as
// "K=V", services sorted by name. For a service "redis-primary" with
// cluster IP 10.96.0.11 and port 6379/TCP named "redis":
//
//	REDIS_PRIMARY_SERVICE_HOST=10.96.0.11
//	REDIS_PRIMARY_SERVICE_PORT=6379
//	REDIS_PRIMARY_SERVICE_PORT_REDIS=6379
//	REDIS_PRIMARY_PORT=tcp://10.96.0.11:6379
//	REDIS_PRIMARY_PORT_6379_TCP=tcp://10.96.0.11:6379
//	REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp
//	REDIS_PRIMARY_PORT_6379_TCP_PORT=6379
//	REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.96.0.11
//
// Services of other namespaces, headless services (clusterIP None),
// ExternalName services and services without a cluster IP give none.
func serviceEnv(namespace string, services []*corev1.Service) []string {
	var picked []*corev1.Service
	for _, s := range services {
		if s == nil || s.Namespace != namespace || s.Spec.Type == corev1.ServiceTypeExternalName ||
			s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		picked = append(picked, s)
	}
	slices.SortFunc(picked, func(a, b *corev1.Service) int { return cmp.Compare(a.Name, b.Name) })
	var env []string
	for _, s := range picked {
		prefix := envName(s.Name)
		ip := s.Spec.ClusterIP
		env = append(env, prefix+"_SERVICE_HOST="+ip)
		if len(s.Spec.Ports) == 0 {
			continue // Kubernetes refuses such a service; no port to name
		}
		env = append(env, prefix+"_SERVICE_PORT="+strconv.Itoa(int(s.Spec.Ports[0].Port)))
		for _, sp := range s.Spec.Ports {
			if sp.Name != "" {
				env = append(env, prefix+"_SERVICE_PORT_"+envName(sp.Name)+"="+strconv.Itoa(int(sp.Port)))
			}
		}
		// Docker links compatible variables; the first port is special-cased.
		for i, sp := range s.Spec.Ports {
			proto := string(cmp.Or(sp.Protocol, corev1.ProtocolTCP))
			port := strconv.Itoa(int(sp.Port))
			url := strings.ToLower(proto) + "://" + net.JoinHostPort(ip, port)
			if i == 0 {
				env = append(env, prefix+"_PORT="+url)
			}
			pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
			env = append(env,
				pp+"="+url,
				pp+"_PROTO="+strings.ToLower(proto),
				pp+"_PORT="+port,
				pp+"_ADDR="+ip,
			)
		}
	}
	return env
}

// envName is a service or port name as Kubernetes spells it in a variable
// name: upper case, '-' as '_'.
func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// serviceLinks reports whether the pod wants service env
// (spec.enableServiceLinks, true when unset).
func serviceLinks(pod *corev1.Pod) bool {
	return pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
}

// withServiceEnv puts the service variables before the container's own env,
// leaving out those the container sets itself: its own values win.
func withServiceEnv(own, services []string) []string {
	if len(services) == 0 {
		return own
	}
	set := make(map[string]bool, len(own))
	for _, kv := range own {
		name, _, _ := strings.Cut(kv, "=")
		set[name] = true
	}
	out := make([]string, 0, len(services)+len(own))
	for _, kv := range services {
		name, _, _ := strings.Cut(kv, "=")
		if !set[name] {
			out = append(out, kv)
		}
	}
	return append(out, own...)
}
