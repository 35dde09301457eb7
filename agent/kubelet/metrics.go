package kubelet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/agent/runtime"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// ErrUsageNotReady: the stats loop has not yet sampled twice, so there is
// no CPU rate to report (kubectl's wording).
var ErrUsageNotReady = errors.New("metrics not available yet")

// statsCallTimeout bounds one driver Stats call.
const statsCallTimeout = 5 * time.Second

// usageTable holds the latest sample of every running container. The
// stats loop replaces ctrs whole each round, so containers that stopped or
// whose pod went away vanish; samples are not changed once stored.
type usageTable struct {
	mu     sync.Mutex
	rounds int // sampling rounds completed
	ctrs   map[ctrKey]*ctrSample
}

type ctrKey struct{ podUID, name string }

// ctrSample is one container's latest reading and its CPU rate over the
// interval before it.
type ctrSample struct {
	namespace, pod, name string
	attempt              int
	started              time.Time // of the attempt: the newer of two same-named pods wins in /metrics
	usage                runtime.Usage
	millis               int64 // CPU rate in millicores; valid if hasRate
	hasRate              bool
}

// statsTarget is a running container to sample.
type statsTarget struct {
	namespace, pod string
	id             runtime.ContainerID
	started        time.Time
}

// startStatsLoop samples the running containers every StatsInterval,
// from now, if the driver can measure them.
func (k *Kubelet) startStatsLoop(ctx context.Context) {
	if k.stats == nil {
		return
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		tick := time.NewTicker(k.cfg.StatsInterval)
		defer tick.Stop()
		for {
			k.sampleUsage(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// runningContainers lists the containers the kubelet believes run.
func (k *Kubelet) runningContainers() []statsTarget {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []statsTarget
	for _, p := range k.pods {
		for _, c := range p.containers {
			if c.running && c.attempt >= 0 {
				out = append(out, statsTarget{namespace: p.namespace, pod: p.name, id: c.id(), started: c.startedAt})
			}
		}
	}
	return out
}

// sampleUsage reads every running container's usage once and replaces the
// table with the results.
func (k *Kubelet) sampleUsage(ctx context.Context) {
	k.usage.mu.Lock()
	prev := k.usage.ctrs
	k.usage.mu.Unlock()
	next := make(map[ctrKey]*ctrSample)
	for _, t := range k.runningContainers() {
		cctx, cancel := context.WithTimeout(ctx, statsCallTimeout)
		u, err := k.stats.Stats(cctx, t.id)
		cancel()
		if ctx.Err() != nil {
			return // stopping: the table stays as it was
		}
		if err != nil {
			// An exit the sync loop has not seen yet is no news.
			if !errors.Is(err, runtime.ErrNotRunning) && !errors.Is(err, runtime.ErrNotFound) {
				k.log.Debug("cannot read container usage", "pod", t.namespace+"/"+t.pod, "container", t.id.Name, "err", err)
			}
			continue
		}
		if u.At.IsZero() {
			u.At = k.cfg.Clock()
		}
		key := ctrKey{podUID: t.id.PodUID, name: t.id.Name}
		next[key] = nextSample(prev[key], t, u)
	}
	k.usage.mu.Lock()
	k.usage.ctrs = next
	k.usage.rounds++
	k.usage.mu.Unlock()
}

// nextSample is the sample for reading u of t, given the container's
// previous sample (nil if none): the CPU rate is the CPU time used between
// the two readings over the time between them. A new attempt starts
// without a rate; when the CPU counter went back or the clock did not
// advance, the previous rate stands.
func nextSample(prev *ctrSample, t statsTarget, u runtime.Usage) *ctrSample {
	s := &ctrSample{namespace: t.namespace, pod: t.pod, name: t.id.Name, attempt: t.id.Attempt, started: t.started, usage: u}
	if prev == nil || prev.attempt != s.attempt {
		return s
	}
	dt := u.At.Sub(prev.usage.At)
	if dt <= 0 || u.CPUNanos < prev.usage.CPUNanos {
		s.millis, s.hasRate = prev.millis, prev.hasRate
		return s
	}
	s.millis = int64(math.Round(float64(u.CPUNanos-prev.usage.CPUNanos) / float64(dt) * 1000))
	s.hasRate = true
	return s
}

// Usage returns what the pods on this node use: per container the CPU
// rate over the last sampling interval and the working set, sorted by
// namespace and name. It fails with ErrUsageNotReady until two samples
// were taken, and at all when the runtime cannot measure containers.
// Containers sampled only once yet (just started) are left out.
func (k *Kubelet) Usage() ([]*pb.PodUsage, error) {
	if k.stats == nil {
		return nil, fmt.Errorf("the %s runtime does not measure container usage", k.cfg.Driver.Name())
	}
	k.usage.mu.Lock()
	defer k.usage.mu.Unlock()
	if k.usage.rounds < 2 {
		return nil, ErrUsageNotReady
	}
	byUID := map[string]*pb.PodUsage{}
	var pods []*pb.PodUsage
	for key, s := range k.usage.ctrs {
		if !s.hasRate {
			continue
		}
		p := byUID[key.podUID]
		if p == nil {
			p = &pb.PodUsage{Namespace: s.namespace, Name: s.pod, Node: k.cfg.Node}
			byUID[key.podUID] = p
			pods = append(pods, p)
		}
		p.Containers = append(p.Containers, &pb.ContainerUsage{Name: s.name, CpuMillis: s.millis, MemoryBytes: int64(s.usage.MemoryWorkingSetBytes)})
	}
	for _, p := range pods {
		slices.SortFunc(p.Containers, func(a, b *pb.ContainerUsage) int { return cmp.Compare(a.GetName(), b.GetName()) })
	}
	slices.SortFunc(pods, func(a, b *pb.PodUsage) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
	return pods, nil
}

// Collector exports the latest samples to Prometheus; register it on the
// agent's registry. It reads the table at each scrape, so containers that
// stopped and pods that went away vanish from /metrics.
func (k *Kubelet) Collector() prometheus.Collector { return usageCollector{k: k} }

var (
	ctrLabels   = []string{"namespace", "pod", "container"}
	ctrCPUDesc  = prometheus.NewDesc("shoal_container_cpu_usage_seconds_total", "CPU time the container's current attempt has used, in seconds (as of the last sample).", ctrLabels, nil)
	ctrMemDesc  = prometheus.NewDesc("shoal_container_memory_working_set_bytes", "The container's memory working set (usage minus inactive page cache), in bytes.", ctrLabels, nil)
	nodeCPUDesc = prometheus.NewDesc("shoal_node_cpu_usage_millicores", "CPU the containers on this node used over the last sampling interval, in millicores.", nil, nil)
	nodeMemDesc = prometheus.NewDesc("shoal_node_memory_working_set_bytes", "Memory working set of the containers on this node, in bytes.", nil, nil)
)

type usageCollector struct{ k *Kubelet }

func (c usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ctrCPUDesc
	ch <- ctrMemDesc
	ch <- nodeCPUDesc
	ch <- nodeMemDesc
}

func (c usageCollector) Collect(ch chan<- prometheus.Metric) {
	t := &c.k.usage
	t.mu.Lock()
	samples := make([]*ctrSample, 0, len(t.ctrs))
	for _, s := range t.ctrs {
		samples = append(samples, s)
	}
	rounds := t.rounds
	t.mu.Unlock()

	// Two pods of one name can be on the node at once (one terminating,
	// its replacement starting); a label set must appear once, so the
	// newer attempt is reported.
	slices.SortFunc(samples, func(a, b *ctrSample) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.pod, b.pod), cmp.Compare(a.name, b.name), b.started.Compare(a.started))
	})
	var cpuMillis int64
	var mem uint64
	for i, s := range samples {
		if s.hasRate {
			cpuMillis += s.millis
		}
		mem += s.usage.MemoryWorkingSetBytes
		if i > 0 && samples[i-1].namespace == s.namespace && samples[i-1].pod == s.pod && samples[i-1].name == s.name {
			continue
		}
		ch <- prometheus.MustNewConstMetric(ctrCPUDesc, prometheus.CounterValue, float64(s.usage.CPUNanos)/1e9, s.namespace, s.pod, s.name)
		ch <- prometheus.MustNewConstMetric(ctrMemDesc, prometheus.GaugeValue, float64(s.usage.MemoryWorkingSetBytes), s.namespace, s.pod, s.name)
	}
	if rounds >= 2 {
		ch <- prometheus.MustNewConstMetric(nodeCPUDesc, prometheus.GaugeValue, float64(cpuMillis))
		ch <- prometheus.MustNewConstMetric(nodeMemDesc, prometheus.GaugeValue, float64(mem))
	}
}
