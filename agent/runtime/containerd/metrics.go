package containerd

import (
	"context"
	"fmt"

	cgroup1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/shoal-dev/shoal/agent/runtime"
)

var _ runtime.Stats = (*Driver)(nil)

// noLimit: a memory limit at or above it is "unlimited" (cgroup v1 reports
// PAGE_COUNTER_MAX pages, about 2^63 bytes; the v2 decoder reads "max" as
// 2^64-1).
const noLimit = 1 << 62

// Stats reads the attempt's usage from its task's cgroup (task.Metrics):
// CPU from cpuacct.usage (v1) or cpu.stat usage_usec (v2), the working set
// as memory usage minus inactive file pages (total_inactive_file on v1,
// inactive_file on v2), as cadvisor and the kubelet compute it.
func (d *Driver) Stats(ctx context.Context, id runtime.ContainerID) (runtime.Usage, error) {
	a, st, err := d.attempts.Lookup(id)
	if err != nil {
		return runtime.Usage{}, err
	}
	if !st.Running || a.Data.task == nil {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: %w", id, runtime.ErrNotRunning)
	}
	m, err := a.Data.task.Metrics(d.nsctx(ctx))
	if err != nil {
		if errdefs.IsNotFound(err) || a.Exited() {
			// The task exited (and was deleted) between Lookup and here.
			return runtime.Usage{}, fmt.Errorf("stats of container %s: %w", id, runtime.ErrNotRunning)
		}
		return runtime.Usage{}, fmt.Errorf("stats of container %s: task metrics: %w", id, err)
	}
	if m.GetData() == nil {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: task metrics carry no data", id)
	}
	u, err := usageFromMetrics(m.GetData())
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: %w", id, err)
	}
	if ts := m.GetTimestamp(); ts != nil && ts.IsValid() && ts.AsTime().Unix() > 0 {
		u.At = ts.AsTime()
	} else {
		u.At = d.cfg.Clock()
	}
	return u, nil
}

// usageFromMetrics decodes a task's metrics (cgroup v1 or v2 stats, told
// apart by the type URL) into a Usage without At.
func usageFromMetrics(data typeurl.Any) (runtime.Usage, error) {
	v, err := typeurl.UnmarshalAny(data)
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("decode task metrics of type %q: %w", data.GetTypeUrl(), err)
	}
	var u runtime.Usage
	switch s := v.(type) {
	case *cgroup1stats.Metrics:
		u.CPUNanos = s.GetCPU().GetUsage().GetTotal()
		mem := s.GetMemory()
		u.MemoryWorkingSetBytes = workingSet(mem.GetUsage().GetUsage(), mem.GetTotalInactiveFile())
		u.MemoryLimitBytes = limit(mem.GetUsage().GetLimit())
	case *cgroup2stats.Metrics:
		u.CPUNanos = s.GetCPU().GetUsageUsec() * 1000
		mem := s.GetMemory()
		u.MemoryWorkingSetBytes = workingSet(mem.GetUsage(), mem.GetInactiveFile())
		u.MemoryLimitBytes = limit(mem.GetUsageLimit())
	default:
		return runtime.Usage{}, fmt.Errorf("task metrics of unknown type %q (%T)", data.GetTypeUrl(), v)
	}
	return u, nil
}

// workingSet is usage minus the inactive file cache the kernel can drop
// first, never below zero.
func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

func limit(l uint64) uint64 {
	if l >= noLimit {
		return 0
	}
	return l
}
