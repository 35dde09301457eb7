package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/agent/runtime"
)

func typesUID(s string) types.UID { return types.UID(s) }

// podState is the kubelet's record of one pod bound here.
type podState struct {
	uid, namespace, name string
	pod                  *corev1.Pod
	containers           map[string]*ctrState
	startTime            time.Time
	terminal             bool   // failed or succeeded: never restart
	removing             bool   // deleted or bound elsewhere: stop and forget
	ip                   string // from the driver's pod network; "" until set up, or without one
	// netting: a SetupPodNetwork of the pod is in flight (at most one);
	// after a failed one the next waits until netRetry.
	netting  bool
	netRetry time.Time
}

// podIP is p's address: its own with a driver that gives pods a network,
// else the node's.
func (k *Kubelet) podIP(p *podState) string {
	if k.network != nil {
		return p.ip
	}
	return k.cfg.NodeIP
}

func newPodState(pod *corev1.Pod) *podState {
	return &podState{uid: string(pod.UID), namespace: pod.Namespace, name: pod.Name, pod: pod, containers: map[string]*ctrState{}}
}

func (p *podState) container(name string) *ctrState {
	c := p.containers[name]
	if c == nil {
		c = &ctrState{podUID: p.uid, name: name, attempt: -1}
		p.containers[name] = c
	}
	return c
}

// allStopped reports whether nothing of p runs, stops or is being set up
// (network or container start in flight): only then may the pod be
// removed from the driver, as RemovePod must not race with a Start.
func (p *podState) allStopped() bool {
	if p.netting {
		return false
	}
	for _, c := range p.containers {
		if c.running || c.stopping || c.starting {
			return false
		}
	}
	return true
}

// anyRunning reports whether a container of p runs.
func (p *podState) anyRunning() bool {
	for _, c := range p.containers {
		if c.running {
			return true
		}
	}
	return false
}

// spec returns the pod spec's container of that name, nil if none.
func (p *podState) spec(name string) *corev1.Container {
	for i := range p.pod.Spec.Containers {
		if p.pod.Spec.Containers[i].Name == name {
			return &p.pod.Spec.Containers[i]
		}
	}
	return nil
}

// ctrState is one container's lifecycle as the kubelet sees it.
type ctrState struct {
	podUID, name string
	attempt      int // current attempt; -1 before the first start
	running      bool
	stopping     bool
	startedAt    time.Time
	cur          *corev1.ContainerStateTerminated // the current attempt's exit
	last         *corev1.ContainerStateTerminated // the previous attempt's exit
	killReason   string                           // why the kubelet killed it (probe failure)

	// starting: a Start of attempt+1 is in flight, outside k.mu. The sync
	// loop neither starts the container again nor counts it as exited
	// until the start's result is applied; early holds that attempt's exit
	// if the driver reported it first.
	starting bool
	early    *runtime.Status

	backoff      time.Duration
	backoffUntil time.Time
	// pullBackoff and pullUntil space the retries of an image that could
	// not be pulled (ErrImagePull, then ImagePullBackOff), whatever the
	// restart policy: the container never ran.
	pullBackoff time.Duration
	pullUntil   time.Time
	pullErr     string
	waiting     string // reason while not running: ContainerCreating, CrashLoopBackOff, ...
	waitingMsg  string

	ready    bool // readiness probe passed (or none)
	started  bool // startup probe passed (or none)
	failures map[probeKind]int
	passes   map[probeKind]int
	cancel   context.CancelFunc // stops the probe goroutines
}

func (c *ctrState) id() runtime.ContainerID {
	return runtime.ContainerID{PodUID: c.podUID, Name: c.name, Attempt: c.attempt}
}

func (c *ctrState) stopProbes() {
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
}

// adopt takes a driver status as the current attempt.
func (c *ctrState) adopt(st runtime.Status) {
	c.attempt = st.ID.Attempt
	c.running = st.Running
	c.startedAt = st.StartedAt
	if !st.Running {
		c.cur = terminated(st, "")
	}
}

func terminated(st runtime.Status, why string) *corev1.ContainerStateTerminated {
	msg := st.Message
	if why != "" {
		msg = strings.TrimSpace(why + " " + msg)
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:   int32(st.ExitCode),
		Reason:     st.Reason,
		Message:    msg,
		StartedAt:  metav1.NewTime(st.StartedAt),
		FinishedAt: metav1.NewTime(st.FinishedAt),
	}
}

// exited records the end of the current attempt and arms the back-off.
func (c *ctrState) exited(st runtime.Status, now time.Time) {
	c.stopProbes()
	c.running, c.stopping, c.ready = false, false, false
	c.cur = terminated(st, c.killReason)
	c.killReason = ""
	if st.FinishedAt.IsZero() {
		c.cur.FinishedAt = metav1.NewTime(now)
	}
}

// syncPodLocked starts containers that should run and restarts exited ones
// by restart policy once their back-off has passed.
func (k *Kubelet) syncPodLocked(ctx context.Context, p *podState, now time.Time) {
	if p.startTime.IsZero() {
		p.startTime = now
	}
	if k.network != nil && p.ip == "" {
		// The containers wait for the pod's address (their env may name
		// it); it is set up outside the lock, once at a time per pod.
		if !p.netting && !now.Before(p.netRetry) {
			k.setupNetworkLocked(ctx, p)
		}
		return
	}
	for i := range p.pod.Spec.Containers {
		spec := &p.pod.Spec.Containers[i]
		c := p.container(spec.Name)
		if c.running && !c.stopping && c.cancel == nil {
			// Adopted after an agent restart: probe it again from scratch,
			// as after a start (the pod's address is known by now).
			k.resetProbesLocked(c, spec)
			k.startProbesLocked(p, c, spec)
		}
		if c.running || c.stopping || c.starting {
			continue
		}
		if now.Before(c.pullUntil) {
			if c.waiting != "ImagePullBackOff" {
				k.event(p, corev1.EventTypeNormal, "BackOff", "Back-off pulling image "+strconv.Quote(spec.Image))
			}
			c.waiting = "ImagePullBackOff"
			c.waitingMsg = fmt.Sprintf("Back-off pulling image %q: %s", spec.Image, c.pullErr)
			continue
		}
		if !c.pullUntil.IsZero() {
			k.startContainerLocked(ctx, p, c, spec) // the pull again, whatever the restart policy
			continue
		}
		if c.attempt >= 0 {
			if !shouldRestart(p.pod.Spec.RestartPolicy, c.cur) {
				continue
			}
			if c.backoffUntil.IsZero() {
				ranFor := c.cur.FinishedAt.Sub(c.cur.StartedAt.Time)
				switch {
				case c.backoff == 0 || ranFor >= k.cfg.BackoffReset:
					c.backoff = k.cfg.RestartBackoff
				default:
					c.backoff = min(2*c.backoff, k.cfg.MaxBackoff)
				}
				c.backoffUntil = c.cur.FinishedAt.Add(c.backoff)
			}
			if now.Before(c.backoffUntil) {
				if c.waiting != "CrashLoopBackOff" {
					k.event(p, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container "+c.name)
				}
				c.waiting = "CrashLoopBackOff"
				c.waitingMsg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					c.backoff.Round(time.Second), c.name, p.name, p.namespace, p.uid)
				continue
			}
		}
		k.startContainerLocked(ctx, p, c, spec)
	}
}

// resetProbesLocked makes c unready and unstarted until its probes say
// otherwise (ready and started at once when it has none).
func (k *Kubelet) resetProbesLocked(c *ctrState, spec *corev1.Container) {
	c.ready = spec.ReadinessProbe == nil
	c.started = spec.StartupProbe == nil
	c.failures, c.passes = map[probeKind]int{}, map[probeKind]int{}
}

func shouldRestart(policy corev1.RestartPolicy, last *corev1.ContainerStateTerminated) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return last != nil && last.ExitCode != 0
	}
	return true
}

// containerSpec resolves env (the container's own and that of the services
// of its namespace), ports and the resolv.conf for the driver.
func (k *Kubelet) containerSpec(pod *corev1.Pod, c *corev1.Container, podIP string) (runtime.ContainerSpec, error) {
	rs := runtime.ContainerSpec{Name: c.Name, Image: c.Image, ImagePullPolicy: string(c.ImagePullPolicy),
		Command: c.Command, Args: c.Args, WorkingDir: c.WorkingDir}
	for _, e := range c.Env {
		v := e.Value
		if src := e.ValueFrom; src != nil {
			switch {
			case src.FieldRef != nil:
				val, err := k.fieldValue(pod, src.FieldRef.FieldPath, podIP)
				if err != nil {
					return rs, fmt.Errorf("env %s: %w", e.Name, err)
				}
				v = val
			case src.ConfigMapKeyRef != nil:
				val, ok, err := k.configMapValue(pod.Namespace, src.ConfigMapKeyRef)
				if err != nil {
					return rs, fmt.Errorf("env %s: %w", e.Name, err)
				}
				if !ok {
					continue
				}
				v = val
			}
		}
		rs.Env = append(rs.Env, e.Name+"="+v)
	}
	if serviceLinks(pod) && k.cfg.Services != nil {
		rs.Env = withServiceEnv(rs.Env, serviceEnv(pod.Namespace, k.cfg.Services(pod.Namespace)))
	}
	rs.ResolvConf = k.resolvConf(pod)
	for _, port := range c.Ports {
		rs.Ports = append(rs.Ports, runtime.Port{Name: port.Name, ContainerPort: port.ContainerPort, HostPort: port.HostPort, Protocol: string(port.Protocol)})
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		rs.CPUMillis = q.MilliValue()
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		rs.MemoryBytes = q.Value()
	}
	return rs, nil
}

// resolvConf renders the pod's resolv.conf, reading the node's when the
// pod's DNS starts from it.
func (k *Kubelet) resolvConf(pod *corev1.Pod) []byte {
	var host resolvConf
	if usesHostDNS(&pod.Spec, k.cfg.DNSServer.IsValid()) {
		b, err := os.ReadFile(k.cfg.HostResolvConf)
		if err != nil {
			k.log.Warn("read the node's resolv.conf; the pod gets an empty one", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		host = parseResolvConf(b)
	}
	return podResolvConf(pod, k.cfg.DNSServer, k.cfg.ClusterDomain, host).render()
}

func (k *Kubelet) fieldValue(pod *corev1.Pod, path, podIP string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return k.cfg.Node, nil
	case "status.podIP":
		return podIP, nil
	case "status.hostIP":
		return k.cfg.NodeIP, nil
	}
	return "", fmt.Errorf("fieldRef %q is not supported", path)
}

func (k *Kubelet) configMapValue(ns string, ref *corev1.ConfigMapKeySelector) (string, bool, error) {
	optional := ref.Optional != nil && *ref.Optional
	o, _ := k.cfg.Store.Get("ConfigMap", ns, ref.Name)
	if o == nil {
		if optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("configmap %q not found", ref.Name)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(o.GetSpec(), &cm); err != nil {
		return "", false, fmt.Errorf("configmap %q: %w", ref.Name, err)
	}
	v, ok := cm.Data[ref.Key]
	if !ok && !optional {
		return "", false, fmt.Errorf("key %q not found in configmap %q", ref.Key, ref.Name)
	}
	return v, ok, nil
}
