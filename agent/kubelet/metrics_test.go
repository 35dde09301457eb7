package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/sim"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/internal/waitfor"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// statsDriver is the sim driver with a Stats whose readings come from a
// clock of its own: each read of a container is one second after the
// previous one and finds 250 ms more CPU time, so every rate is exactly
// 250m whatever the real timing of the sampling loop.
type statsDriver struct {
	*sim.Driver
	mu    sync.Mutex
	reads map[runtime.ContainerID]int
}

var statsEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (d *statsDriver) Stats(_ context.Context, id runtime.ContainerID) (runtime.Usage, error) {
	st, err := d.Driver.Status(id)
	if err != nil {
		return runtime.Usage{}, err
	}
	if !st.Running {
		return runtime.Usage{}, fmt.Errorf("stats of %s: %w", id, runtime.ErrNotRunning)
	}
	d.mu.Lock()
	n := d.reads[id]
	d.reads[id]++
	d.mu.Unlock()
	return runtime.Usage{
		CPUNanos:              uint64(n) * uint64(250*time.Millisecond),
		MemoryWorkingSetBytes: 30 << 20,
		At:                    statsEpoch.Add(time.Duration(n) * time.Second),
	}, nil
}

// startStats runs a kubelet on statsDriver, sampling every 10 ms.
func startStats(t *testing.T) (*fixture, *Kubelet) {
	t.Helper()
	sd := &statsDriver{Driver: sim.New(), reads: map[runtime.ContainerID]int{}}
	f := &fixture{store: state.New(), driver: sd.Driver}
	f.writer = &storeWriter{store: f.store}
	f.put(t, &pb.Object{Kind: "Namespace", ApiVersion: "v1", Name: "default", Spec: []byte("{}")})
	cfg := DefaultConfig()
	cfg.Node, cfg.NodeIP, cfg.Driver, cfg.Store, cfg.Writer = "n1", "127.0.0.9", sd, f.store, f.writer
	cfg.StatusInterval, cfg.ResyncInterval, cfg.StatsInterval = 20*time.Millisecond, 50*time.Millisecond, 10*time.Millisecond
	k := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = sd.Close()
	})
	return f, k
}

// scrape returns the text exposition of the kubelet's collector.
func scrape(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.PanicOnError}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func usageText(pods []*pb.PodUsage, err error) string {
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, p := range pods {
		for _, c := range p.GetContainers() {
			parts = append(parts, fmt.Sprintf("%s/%s@%s:%s=%dm,%dMi", p.GetNamespace(), p.GetName(), p.GetNode(), c.GetName(), c.GetCpuMillis(), c.GetMemoryBytes()>>20))
		}
	}
	return strings.Join(parts, " ")
}

// TestUsageSampling: the kubelet samples its running containers, reports
// each one's CPU as millicores over the last interval and its working set
// (Usage and /metrics), and forgets a pod once it is deleted.
func TestUsageSampling(t *testing.T) {
	f, k := startStats(t)
	f.put(t, podObject(t, "busy", corev1.RestartPolicyAlways, "n1"))
	f.put(t, podObject(t, "other", corev1.RestartPolicyAlways, "n1"))

	const want = "default/busy@n1:app=250m,30Mi default/other@n1:app=250m,30Mi"
	waitfor.Cond(t, 10*time.Second, "both pods measured", func() (bool, string) {
		got := usageText(k.Usage())
		return got == want, got
	})
	waitfor.Cond(t, 10*time.Second, "both pods in /metrics", func() (bool, string) {
		m := scrape(t, k.Collector())
		return strings.Contains(m, `shoal_container_cpu_usage_seconds_total{container="app",namespace="default",pod="busy"}`) &&
			strings.Contains(m, `shoal_container_memory_working_set_bytes{container="app",namespace="default",pod="other"} 3.145728e+07`) &&
			strings.Contains(m, "shoal_node_cpu_usage_millicores 500") &&
			strings.Contains(m, "shoal_node_memory_working_set_bytes 6.291456e+07"), m
	})

	if _, err := f.writer.Txn(context.Background(), &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "busy"}}}}); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, 10*time.Second, "the deleted pod gone from Usage", func() (bool, string) {
		got := usageText(k.Usage())
		return got == "default/other@n1:app=250m,30Mi", got
	})
	waitfor.Cond(t, 10*time.Second, "the deleted pod gone from /metrics", func() (bool, string) {
		m := scrape(t, k.Collector())
		return !strings.Contains(m, `pod="busy"`) && strings.Contains(m, `pod="other"`) &&
			strings.Contains(m, "shoal_node_cpu_usage_millicores 250"), m
	})
}

// TestUsageWithoutStats: with a driver that cannot measure (sim) Usage
// says so and /metrics has no usage.
func TestUsageWithoutStats(t *testing.T) {
	d := sim.New()
	defer d.Close()
	k := New(Config{Driver: d, Store: state.New(), Node: "n1"})
	if _, err := k.Usage(); err == nil || !strings.Contains(err.Error(), "sim runtime does not measure") {
		t.Fatalf("Usage = %v; want the runtime named", err)
	}
	if m := scrape(t, k.Collector()); strings.Contains(m, "shoal_") {
		t.Fatalf("metrics %q; want none", m)
	}
}

func TestUsageNotReadyBeforeTwoRounds(t *testing.T) {
	sd := &statsDriver{Driver: sim.New(), reads: map[runtime.ContainerID]int{}}
	defer sd.Close()
	k := New(Config{Driver: sd, Store: state.New(), Node: "n1"})
	for round := range 2 {
		if _, err := k.Usage(); !errors.Is(err, ErrUsageNotReady) {
			t.Fatalf("after %d rounds: Usage = %v, want ErrUsageNotReady", round, err)
		}
		k.sampleUsage(t.Context())
	}
	if pods, err := k.Usage(); err != nil || len(pods) != 0 {
		t.Fatalf("Usage = %v, %v; want no pods, no error", pods, err)
	}
}

func TestNextSample(t *testing.T) {
	at := func(s int) time.Time { return statsEpoch.Add(time.Duration(s) * time.Second) }
	target := statsTarget{namespace: "ns", pod: "p", id: runtime.ContainerID{PodUID: "u", Name: "c", Attempt: 1}}
	prev := &ctrSample{attempt: 1, usage: runtime.Usage{CPUNanos: 1e9, At: at(10)}, millis: 40, hasRate: true}
	tests := []struct {
		name     string
		prev     *ctrSample
		usage    runtime.Usage
		wantRate bool
		want     int64
	}{
		{"first sample", nil, runtime.Usage{CPUNanos: 5e9, At: at(20)}, false, 0},
		{"new attempt", &ctrSample{attempt: 0, usage: prev.usage}, runtime.Usage{CPUNanos: 5e9, At: at(20)}, false, 0},
		{"one core", prev, runtime.Usage{CPUNanos: 11e9, At: at(20)}, true, 1000},
		{"rounded", prev, runtime.Usage{CPUNanos: 1e9 + 12_345_678, At: at(20)}, true, 1},
		{"two and a half cores over 2 s", prev, runtime.Usage{CPUNanos: 6e9, At: at(12)}, true, 2500},
		{"idle", prev, runtime.Usage{CPUNanos: 1e9, At: at(20)}, true, 0},
		{"counter went back: previous rate", prev, runtime.Usage{CPUNanos: 5e8, At: at(20)}, true, 40},
		{"clock did not advance: previous rate", prev, runtime.Usage{CPUNanos: 2e9, At: at(10)}, true, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := nextSample(tt.prev, target, tt.usage)
			if s.hasRate != tt.wantRate || s.millis != tt.want || s.usage != tt.usage || s.pod != "p" || s.name != "c" || s.attempt != 1 {
				t.Fatalf("sample %+v; want rate %v %dm", s, tt.wantRate, tt.want)
			}
		})
	}
}
