package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shoal-dev/shoal/agent/runtime"
)

type probeKind int

const (
	probeStartup probeKind = iota
	probeLiveness
	probeReadiness
)

func (k probeKind) String() string { return [...]string{"startup", "liveness", "readiness"}[k] }

type probeResult struct {
	uid, container string
	attempt        int
	kind           probeKind
	ok             bool
	msg            string
}

// startProbesLocked starts one goroutine per probe of the container
// attempt; they stop with the attempt.
func (k *Kubelet) startProbesLocked(p *podState, c *ctrState, spec *corev1.Container) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	probes := []struct {
		kind  probeKind
		probe *corev1.Probe
	}{{probeStartup, spec.StartupProbe}, {probeLiveness, spec.LivenessProbe}, {probeReadiness, spec.ReadinessProbe}}
	for _, pr := range probes {
		if pr.probe == nil {
			continue
		}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			k.probeLoop(ctx, c.id(), k.podIP(p), spec, pr.kind, pr.probe)
		}()
	}
}

func (k *Kubelet) probeLoop(ctx context.Context, id runtime.ContainerID, podIP string, spec *corev1.Container, kind probeKind, pr *corev1.Probe) {
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	if pr.PeriodSeconds == 0 {
		period = 10 * time.Second
	}
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	delay := time.Duration(pr.InitialDelaySeconds) * time.Second
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		ok, msg := k.runProbe(pctx, id, podIP, spec, pr)
		cancel()
		if ctx.Err() != nil {
			return
		}
		select {
		case k.probeResults <- probeResult{uid: id.PodUID, container: id.Name, attempt: id.Attempt, kind: kind, ok: ok, msg: msg}:
		case <-ctx.Done():
			return
		}
		timer.Reset(period)
	}
}

// runProbe runs one probe: exec in the container, a TCP connect, or an
// HTTP GET answered with 200-399.
func (k *Kubelet) runProbe(ctx context.Context, id runtime.ContainerID, podIP string, spec *corev1.Container, pr *corev1.Probe) (bool, string) {
	switch {
	case pr.Exec != nil:
		var out bytes.Buffer
		code, err := k.cfg.Driver.Exec(ctx, id, pr.Exec.Command, nil, &out, &out)
		if err != nil {
			return false, fmt.Sprintf("exec %v: %v", pr.Exec.Command, err)
		}
		if code != 0 {
			return false, fmt.Sprintf("exec %v: exit code %d: %s", pr.Exec.Command, code, truncate(out.String()))
		}
		return true, ""
	case pr.TCPSocket != nil:
		port, err := resolvePort(pr.TCPSocket.Port, spec)
		if err != nil {
			return false, err.Error()
		}
		host := pr.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, fmt.Sprintf("tcp %s:%d: %v", host, port, err)
		}
		conn.Close()
		return true, ""
	case pr.HTTPGet != nil:
		g := pr.HTTPGet
		port, err := resolvePort(g.Port, spec)
		if err != nil {
			return false, err.Error()
		}
		host := g.Host
		if host == "" {
			host = podIP
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		path := g.Path
		if path == "" {
			path = "/"
		}
		url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		for _, h := range g.HTTPHeaders {
			req.Header.Set(h.Name, h.Value)
		}
		req.Header.Set("User-Agent", "shoal-probe")
		resp, err := probeClient.Do(req)
		if err != nil {
			return false, fmt.Sprintf("GET %s: %v", url, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return false, fmt.Sprintf("GET %s: HTTP %d", url, resp.StatusCode)
		}
		return true, ""
	}
	return false, "probe has no handler"
}

var probeClient = &http.Client{
	// Probes do not follow redirects off the pod, and never reuse a
	// connection a dying container may hold.
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q is not a named port of container %s", p.StrVal, c.Name)
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// onProbe applies a probe result: thresholds, readiness, and a kill on a
// failed liveness or startup probe.
func (k *Kubelet) onProbe(_ context.Context, r probeResult) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.pods[r.uid]
	if p == nil {
		return
	}
	c := p.containers[r.container]
	if c == nil || c.attempt != r.attempt || !c.running || c.stopping {
		return
	}
	var spec *corev1.Container
	for i := range p.pod.Spec.Containers {
		if p.pod.Spec.Containers[i].Name == c.name {
			spec = &p.pod.Spec.Containers[i]
		}
	}
	if spec == nil {
		return
	}
	pr := map[probeKind]*corev1.Probe{probeStartup: spec.StartupProbe, probeLiveness: spec.LivenessProbe, probeReadiness: spec.ReadinessProbe}[r.kind]
	if pr == nil {
		return
	}
	// Liveness and readiness wait for the startup probe.
	if r.kind != probeStartup && !c.started {
		return
	}
	success := max(pr.SuccessThreshold, 1)
	failure := pr.FailureThreshold
	if failure == 0 {
		failure = 3
	}
	if r.ok {
		c.failures[r.kind] = 0
		c.passes[r.kind]++
		if c.passes[r.kind] >= int(success) {
			switch r.kind {
			case probeStartup:
				c.started = true
			case probeReadiness:
				c.ready = true
			}
		}
		return
	}
	c.passes[r.kind] = 0
	c.failures[r.kind]++
	if c.failures[r.kind] < int(failure) {
		return
	}
	if c.failures[r.kind] == int(failure) {
		k.event(p, corev1.EventTypeWarning, "Unhealthy", strings.ToUpper(r.kind.String()[:1])+r.kind.String()[1:]+" probe failed: "+r.msg)
	}
	switch r.kind {
	case probeReadiness:
		if c.ready {
			k.log.Info("readiness probe failed", "pod", p.key(), "container", c.name, "msg", r.msg)
		}
		c.ready = false
	case probeLiveness, probeStartup:
		k.log.Info(r.kind.String()+" probe failed: killing container", "pod", p.key(), "container", c.name, "msg", r.msg)
		c.killReason = fmt.Sprintf("%s probe failed: %s", r.kind, r.msg)
		k.stopContainerLocked(p, c, c.killReason)
	}
}
