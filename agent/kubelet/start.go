package kubelet

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// The slow half of starting a pod, outside k.mu: a pod's network setup and
// each container's Driver.Start (an image pull, possibly seconds) run in
// goroutines of their own, at most Config.MaxParallelStarts at once, so
// that pods start side by side and one slow pull holds up nothing else.
// Each is marked in flight under k.mu before it is launched (podState
// netting, ctrState starting) and applies its result under k.mu when it
// returns, then wakes the sync loop.

// inSlot runs call in a start slot, unless ctx ends first or wanted
// (called under k.mu once the slot is held) says the call is no longer
// needed. It reports whether call ran. k.mu must not be held.
func (k *Kubelet) inSlot(ctx context.Context, wanted func() bool, call func()) bool {
	select {
	case k.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-k.slots }()
	k.mu.Lock()
	ok := ctx.Err() == nil && wanted()
	k.mu.Unlock()
	if !ok {
		return false
	}
	call()
	return true
}

// poke makes the sync loop run again soon.
func (k *Kubelet) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// wanted reports whether p may still start anything.
func (p *podState) wanted() bool { return !p.removing && !p.terminal }

// setupNetworkLocked sets up p's network in the background; its address
// becomes p.ip and the next sync starts the containers.
func (k *Kubelet) setupNetworkLocked(ctx context.Context, p *podState) {
	p.netting = true
	pod := runtime.Pod{UID: p.uid, Namespace: p.namespace, Name: p.name}
	k.starts.Add(1)
	go func() {
		defer k.starts.Done()
		var ip netip.Addr
		var err error
		ran := k.inSlot(ctx, p.wanted, func() { ip, err = k.network.SetupPodNetwork(ctx, pod) })

		k.mu.Lock()
		defer k.mu.Unlock()
		p.netting = false
		defer k.poke() // the pod may be waiting for this to be removed
		switch {
		case !ran || (err != nil && ctx.Err() != nil):
			// The pod went away or the kubelet is stopping.
		case err != nil:
			k.log.Warn("pod network", "pod", p.key(), "err", err)
			k.event(p, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
			for i := range p.pod.Spec.Containers {
				c := p.container(p.pod.Spec.Containers[i].Name)
				if !c.running && !c.stopping && !c.starting {
					c.waiting, c.waitingMsg = "ContainerCreating", "pod network: "+err.Error()
				}
			}
			// Retried by a later sync, not by the one this wakes.
			p.netRetry = k.cfg.Clock().Add(k.cfg.ResyncInterval)
		default:
			// Kept even if the pod went away meanwhile: RemovePod, once
			// nothing is in flight, releases it.
			p.ip = ip.String()
		}
	}()
}

// startContainerLocked resolves the container's spec (env, with the pod's
// address known by now) and starts the next attempt in the background.
func (k *Kubelet) startContainerLocked(ctx context.Context, p *podState, c *ctrState, spec *corev1.Container) {
	rs, err := k.containerSpec(p.pod, spec, k.podIP(p))
	if err != nil {
		if c.waiting != "CreateContainerConfigError" {
			k.event(p, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		}
		c.waiting, c.waitingMsg = "CreateContainerConfigError", err.Error()
		return
	}
	attempt := c.attempt + 1
	c.starting, c.early = true, nil
	pod := runtime.Pod{UID: p.uid, Namespace: p.namespace, Name: p.name}
	k.starts.Add(1)
	go func() {
		defer k.starts.Done()
		var st runtime.Status
		var err error
		wanted := func() bool { return p.wanted() && p.spec(c.name) != nil }
		ran := k.inSlot(ctx, wanted, func() { st, err = k.cfg.Driver.Start(ctx, pod, rs, attempt) })

		k.mu.Lock()
		defer k.mu.Unlock()
		k.applyStartLocked(ctx, p, c, rs.Image, attempt, ran, st, err)
		k.poke()
	}()
}

// applyStartLocked records the result of a start: the attempt runs (and is
// probed), or the pull or start failed and is retried after a back-off. A
// container whose pod went away or failed meanwhile is stopped at once.
func (k *Kubelet) applyStartLocked(ctx context.Context, p *podState, c *ctrState, image string, attempt int, ran bool, st runtime.Status, err error) {
	c.starting = false
	early := c.early
	c.early = nil
	if !ran || (err != nil && ctx.Err() != nil) {
		// Not started: the pod went away or the kubelet is stopping.
		return
	}
	now := k.cfg.Clock()
	if errors.Is(err, runtime.ErrImagePull) {
		// Not a crash: the container never ran, so no restart is counted
		// and it is retried with its own back-off.
		c.pullBackoff = min(max(2*c.pullBackoff, k.cfg.RestartBackoff), k.cfg.MaxBackoff)
		c.pullUntil = now.Add(c.pullBackoff)
		c.waiting, c.waitingMsg, c.pullErr = "ErrImagePull", err.Error(), err.Error()
		k.log.Warn("pull image", "pod", p.key(), "container", c.name, "image", image, "err", err)
		k.event(p, corev1.EventTypeWarning, "Failed", "Failed to pull image "+strconv.Quote(image)+": "+err.Error())
		return
	}
	c.pullBackoff, c.pullUntil = 0, time.Time{}
	if err != nil {
		c.waiting, c.waitingMsg = "RunContainerError", err.Error()
		k.log.Warn("start container", "pod", p.key(), "container", c.name, "err", err)
		k.event(p, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		// Back off like a crash so a bad spec does not spin.
		c.attempt = attempt
		c.cur = &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: err.Error(),
			StartedAt: metav1.NewTime(now), FinishedAt: metav1.NewTime(now)}
		if c.last == nil {
			c.last = c.cur
		}
		c.backoffUntil = time.Time{}
		return
	}
	if c.cur != nil {
		c.last = c.cur
	}
	c.attempt, c.running, c.cur = attempt, true, nil
	c.startedAt = st.StartedAt
	c.waiting, c.waitingMsg = "", ""
	c.backoffUntil = time.Time{}
	spec := p.spec(c.name)
	if spec != nil {
		k.resetProbesLocked(c, spec)
	}
	k.log.Info("container started", "pod", p.key(), "container", c.name, "attempt", attempt, "pid", st.PID)
	k.event(p, corev1.EventTypeNormal, "Started", "Started container "+c.name)
	switch {
	case early != nil && early.ID.Attempt == attempt:
		// It exited before this result was applied (onExit kept it).
		c.exited(*early, now)
		k.log.Info("container exited", "pod", p.key(), "container", c.name, "attempt", attempt, "code", early.ExitCode, "reason", early.Reason)
	case p.removing:
		k.stopContainerLocked(p, c, "pod deleted")
	case p.terminal:
		k.stopContainerLocked(p, c, "pod is "+string(p.pod.Status.Phase))
	case spec == nil:
		k.stopContainerLocked(p, c, "container no longer in the pod's spec")
	case ctx.Err() != nil:
		// Stopping: it runs on unprobed, the next kubelet adopts it.
	default:
		k.startProbesLocked(p, c, spec)
	}
}
