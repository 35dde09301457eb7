package sched

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// What a container that sets no cpu or memory request is taken to ask for
// when scoring (never when fitting), as Kubernetes does (GetNonzeroRequests),
// so that best-effort pods still spread.
const (
	defaultCPUMilli = 100
	defaultMemBytes = 200 << 20
)

// resources maps a resource name to an amount: millicores for cpu, units
// (bytes, devices) for everything else.
type resources map[corev1.ResourceName]int64

func amount(name corev1.ResourceName, q resource.Quantity) int64 {
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// demand is what a pod or container asks of a node. cpu and memory are
// fields, not map entries, because Place sums every pod of every node and
// almost no pod asks for anything else.
type demand struct {
	cpu, mem     int64     // millicores, bytes
	cpuNZ, memNZ int64     // the same with scoring defaults for unset requests
	other        resources // any other resource; nil when none
}

func (d *demand) add(o demand) {
	d.cpu += o.cpu
	d.mem += o.mem
	d.cpuNZ += o.cpuNZ
	d.memNZ += o.memNZ
	for k, v := range o.other {
		if d.other == nil {
			d.other = resources{}
		}
		d.other[k] += v
	}
}

func (d *demand) max(o demand) {
	d.cpu = max(d.cpu, o.cpu)
	d.mem = max(d.mem, o.mem)
	d.cpuNZ = max(d.cpuNZ, o.cpuNZ)
	d.memNZ = max(d.memNZ, o.memNZ)
	for k, v := range o.other {
		if d.other == nil {
			d.other = resources{}
		}
		d.other[k] = max(d.other[k], v)
	}
}

// Requests sums a pod's container requests: cpu in millicores, memory in
// bytes. A container that sets a limit but no request for a resource requests
// its limit, as Kubernetes defaults it. Init containers, sidecars
// (restartPolicy Always init containers), pod-level requests and pod overhead
// count as the Kubernetes scheduler counts them.
func Requests(pod *corev1.Pod) (cpuMilli, memBytes int64) {
	d := podDemand(pod)
	return d.cpu, d.mem
}

// requestOf is a container's request for name, or its limit when it sets no
// request; ok is false when it sets neither.
func requestOf(r *corev1.ResourceRequirements, name corev1.ResourceName) (v int64, ok bool) {
	if q, ok := r.Requests[name]; ok {
		return amount(name, q), true
	}
	if q, ok := r.Limits[name]; ok {
		return amount(name, q), true
	}
	return 0, false
}

func containerDemand(r *corev1.ResourceRequirements) demand {
	var d demand
	var set bool
	d.cpu, set = requestOf(r, corev1.ResourceCPU)
	d.cpuNZ = d.cpu
	if !set {
		d.cpuNZ = defaultCPUMilli
	}
	d.mem, set = requestOf(r, corev1.ResourceMemory)
	d.memNZ = d.mem
	if !set {
		d.memNZ = defaultMemBytes
	}
	for _, l := range []corev1.ResourceList{r.Limits, r.Requests} {
		for name := range l {
			switch name {
			case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods:
				continue
			}
			if d.other == nil {
				d.other = resources{}
			}
			d.other[name], _ = requestOf(r, name)
		}
	}
	return d
}

// podDemand is the effective request of a pod (Kubernetes PodRequests): the
// larger of the running containers plus sidecars and the largest init
// container plus the sidecars started before it; then pod-level requests
// replace cpu and memory, and the overhead is added.
func podDemand(pod *corev1.Pod) demand {
	var d demand
	for i := range pod.Spec.Containers {
		d.add(containerDemand(&pod.Spec.Containers[i].Resources))
	}
	var sidecars, initMax demand
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cd := containerDemand(&c.Resources)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			d.add(cd)
			sidecars.add(cd)
			cd = demand{}
		}
		cd.add(sidecars)
		initMax.max(cd)
	}
	d.max(initMax)
	if pr := pod.Spec.Resources; pr != nil {
		if v, ok := requestOf(pr, corev1.ResourceCPU); ok {
			d.cpu, d.cpuNZ = v, v
		}
		if v, ok := requestOf(pr, corev1.ResourceMemory); ok {
			d.mem, d.memNZ = v, v
		}
	}
	for name, q := range pod.Spec.Overhead {
		v := amount(name, q)
		switch name {
		case corev1.ResourceCPU:
			d.cpu += v
			d.cpuNZ += v
		case corev1.ResourceMemory:
			d.mem += v
			d.memNZ += v
		case corev1.ResourcePods:
		default:
			d.add(demand{other: resources{name: v}})
		}
	}
	return d
}

// usage is what the counted pods on a node take, against what it offers.
type usage struct {
	allocCPU, allocMem int64
	allocOther         resources
	maxPods            int64 // -1: no limit
	used               demand
	pods               int64
	ports              []hostPort
}

// newUsage sums the pods on n that count against a placement of pod.
func newUsage(n *NodeInfo, pod *corev1.Pod) usage {
	u := usage{maxPods: -1}
	alloc := n.Node.Status.Allocatable
	if len(alloc) == 0 {
		alloc = n.Node.Status.Capacity
	}
	for name, q := range alloc {
		switch name {
		case corev1.ResourcePods:
			u.maxPods = q.Value()
		case corev1.ResourceCPU:
			u.allocCPU = q.MilliValue()
		case corev1.ResourceMemory:
			u.allocMem = q.Value()
		default:
			if u.allocOther == nil {
				u.allocOther = resources{}
			}
			u.allocOther[name] = q.Value()
		}
	}
	for _, q := range n.Pods {
		if !counted(q, pod) {
			continue
		}
		u.pods++
		u.used.add(podDemand(q))
		u.ports = append(u.ports, podHostPorts(q, n.SharedHostNetwork)...)
	}
	return u
}

// fits returns why a pod asking req and ports does not fit, or "". A zero
// request always fits, even on an overcommitted node. Resources are checked
// cpu, memory, then the rest by name: the order kubectl reports them.
func (u *usage) fits(req demand, ports []hostPort) string {
	for _, want := range ports {
		for _, have := range u.ports {
			if want.conflicts(have) {
				return ReasonHostPorts
			}
		}
	}
	if u.maxPods >= 0 && u.pods+1 > u.maxPods {
		return ReasonTooManyPods
	}
	if req.cpu > 0 && req.cpu > u.allocCPU-u.used.cpu {
		return ReasonInsufficientCPU
	}
	if req.mem > 0 && req.mem > u.allocMem-u.used.mem {
		return ReasonInsufficientMemory
	}
	if len(req.other) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(req.other))
	for _, name := range names {
		if want := req.other[name]; want > 0 && want > u.allocOther[name]-u.used.other[name] {
			return "Insufficient " + string(name)
		}
	}
	return ""
}

// Fits reports whether pod fits on n given the pods already there: free host
// ports, the pod-count limit and every requested resource (cpu, memory,
// ephemeral storage, extended resources) within allocatable minus the requests
// of the pods already bound. The string is the reason when it does not. The
// state machine calls it to re-check a bind against fresh state; pod may be
// listed in n.Pods already, it is counted once. A nil n.Node never fits.
func Fits(n NodeInfo, pod *corev1.Pod) (bool, string) {
	if n.Node == nil || pod == nil {
		return false, ReasonNotReady
	}
	u := newUsage(&n, pod)
	if r := u.fits(podDemand(pod), podHostPorts(pod, n.SharedHostNetwork)); r != "" {
		return false, r
	}
	return true, ""
}

// resourceScore is the 0..100 resource score of placing a pod asking req on a
// node with usage u, counting unset requests at the scoring defaults: the
// average free fraction of cpu and memory after placing (spread) or the
// average used fraction (binpack). fill is the exact average used fraction,
// for ties.
func resourceScore(u usage, req demand, policy Policy) (score int64, fill float64) {
	type res struct{ used, alloc int64 }
	rs := [2]res{
		{u.used.cpuNZ + req.cpuNZ, u.allocCPU},
		{u.used.memNZ + req.memNZ, u.allocMem},
	}
	for _, r := range rs {
		used := min(r.used, r.alloc)
		if r.alloc > 0 {
			fill += float64(used) / float64(r.alloc) / 2
		} else {
			fill += 0.5
		}
		switch {
		case r.alloc <= 0:
			// Nothing to offer: scores 0 either way.
		case policy == PolicyBinpack:
			score += used * 100 / r.alloc
		case r.used <= r.alloc:
			score += (r.alloc - r.used) * 100 / r.alloc
		}
	}
	return score / 2, fill
}

// hostPort is one port a pod binds on its node's address.
type hostPort struct {
	ip    string
	proto corev1.Protocol
	port  int32
}

// conflicts reports whether two host ports cannot both be bound: same port and
// protocol on the same address, or either on every address.
func (a hostPort) conflicts(b hostPort) bool {
	if a.port != b.port || a.proto != b.proto {
		return false
	}
	return a.ip == b.ip || anyAddress(a.ip) || anyAddress(b.ip)
}

func anyAddress(ip string) bool { return ip == "0.0.0.0" || ip == "::" }

// podHostPorts lists the host ports pod binds. With hostNetwork, or on a
// node whose runtime shares the host network, a containerPort without a
// hostPort is bound on the host as is.
func podHostPorts(pod *corev1.Pod, sharedHostNetwork bool) []hostPort {
	shared := sharedHostNetwork || pod.Spec.HostNetwork
	var out []hostPort
	collect := func(c *corev1.Container) {
		for _, cp := range c.Ports {
			port := cp.HostPort
			if port == 0 && shared {
				port = cp.ContainerPort
			}
			if port <= 0 {
				continue
			}
			hp := hostPort{ip: cp.HostIP, proto: cp.Protocol, port: port}
			if hp.ip == "" {
				hp.ip = "0.0.0.0"
			}
			if hp.proto == "" {
				hp.proto = corev1.ProtocolTCP
			}
			out = append(out, hp)
		}
	}
	for i := range pod.Spec.Containers {
		collect(&pod.Spec.Containers[i])
	}
	// Sidecars run beside the containers; plain init containers have exited.
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			collect(c)
		}
	}
	return out
}
