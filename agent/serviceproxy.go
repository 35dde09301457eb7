package agent

import (
	"context"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/agent/endpoints"
	"github.com/shoal-dev/shoal/agent/proxy"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// servicesRefresh bounds how often DNS answers and the proxy table are
// rebuilt: changes show within this, far under the one second services
// promise.
const servicesRefresh = 200 * time.Millisecond

// proxyResync is how often listens that failed are tried again without a
// change to trigger it.
const proxyResync = 5 * time.Second

// startProxy starts the service proxy and makes the service CIDR local.
// Without the route (no CAP_NET_ADMIN) node ports still work; ClusterIPs
// then reach the proxy only where something else routes them here.
func (a *Agent) startProxy() {
	if !a.cfg.Proxy {
		return
	}
	if err := proxy.EnsureLocalRoute(a.cfg.ServiceCIDR); err != nil {
		a.log.Warn("proxy: ClusterIPs not made local: connections to them will not reach this node's proxy", "err", err)
	}
	a.proxy = proxy.New(proxy.Config{Logger: a.log.With("component", "proxy"), Registerer: a.reg})
	a.log.Info("service proxy started", "service_cidr", a.cfg.ServiceCIDR)
}

// servicesLoop keeps cluster DNS and the proxy in step with the local
// replica: every service, its endpoints computed from the pods it selects.
func (a *Agent) servicesLoop(ctx context.Context) {
	if a.dns == nil && a.proxy == nil {
		return
	}
	store := a.node.Store()
	synced := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_services_synced_revision",
		Help: "Store revision the cluster DNS records and the proxy table were last built from: every change up to it is in effect on this agent."})
	if err := a.reg.Register(synced); err != nil {
		a.log.Warn("register services metric", "err", err)
	}
	var built uint64
	resync := time.NewTicker(proxyResync)
	defer resync.Stop()
	for {
		changed := store.Changed()
		if rev := store.Revision(); rev != built {
			v := a.serviceView()
			if a.dns != nil {
				a.dns.SetRecords(a.dnsRecords(v))
			}
			if a.proxy != nil {
				_ = a.proxy.Sync(proxy.Build(a.nodeAddrs(), v.services, v.endpoints))
			}
			built = rev
			synced.Set(float64(rev))
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-resync.C:
			if a.proxy != nil && a.proxy.Failed() > 0 {
				built = 0 // try the listens that failed again
			}
			continue
		}
		// Let a burst of changes land before rebuilding.
		select {
		case <-ctx.Done():
			return
		case <-time.After(servicesRefresh):
		}
	}
}

// nodeAddrs are the addresses node ports listen on: the bind address (all
// addresses when it is unspecified).
func (a *Agent) nodeAddrs() []netip.Addr {
	ip, err := netip.ParseAddr(a.cfg.BindAddr)
	if err != nil {
		return nil
	}
	return []netip.Addr{ip}
}

// serviceView is every service of the replica and the pods they select.
type serviceView struct {
	services []*corev1.Service
	pods     []*corev1.Pod
	eps      map[*corev1.Service][]endpoints.Endpoint
}

// endpoints are s's endpoints, computed once per view.
func (v *serviceView) endpoints(s *corev1.Service) []endpoints.Endpoint {
	if e, ok := v.eps[s]; ok {
		return e
	}
	e := endpoints.For(s, v.pods)
	v.eps[s] = e
	return e
}

// serviceView decodes the services and only the pods some service selects.
func (a *Agent) serviceView() *serviceView {
	v := &serviceView{eps: map[*corev1.Service][]endpoints.Endpoint{}}
	svcObjs, _ := a.node.Store().List("Service", "", nil)
	var selectors []labels.Selector
	var namespaces []string
	for _, o := range svcObjs {
		s := &corev1.Service{}
		if err := object.Decode(o, s); err != nil {
			continue
		}
		v.services = append(v.services, s)
		if len(s.Spec.Selector) > 0 {
			selectors = append(selectors, labels.SelectorFromSet(s.Spec.Selector))
			namespaces = append(namespaces, s.Namespace)
		}
	}
	var selected []*pb.Object
	for _, o := range a.pods.Objects() {
		for i, sel := range selectors {
			if o.GetNamespace() == namespaces[i] && sel.Matches(labels.Set(o.GetLabels())) {
				selected = append(selected, o)
				break
			}
		}
	}
	for _, p := range a.pods.Decode(selected) {
		v.pods = append(v.pods, p.Pod)
	}
	return v
}
