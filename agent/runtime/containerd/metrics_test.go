package containerd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	cgroup1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// TestStats runs a container that spins one core and holds 20 MiB: its
// CPU time grows between two reads, the working set covers what it holds,
// and the memory limit is the spec's.
func TestStats(t *testing.T) {
	d, _ := newDriver(t)
	const held = 20 << 20
	c := testapp("burn", "burn", "--cpu", "1", "--mem", "20Mi")
	c.MemoryBytes = 256 << 20
	st, err := d.Start(t.Context(), testPod, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	var first runtime.Usage
	waitfor.Cond(t, wait, "the working set to cover the 20 MiB held", func() (bool, string) {
		u, err := d.Stats(t.Context(), st.ID)
		first = u
		return err == nil && u.MemoryWorkingSetBytes >= held && u.CPUNanos > 0, fmt.Sprintf("%+v %v", u, err)
	})
	if first.MemoryLimitBytes != 256<<20 || first.At.IsZero() {
		t.Fatalf("usage %+v: want the 256 MiB limit and a time", first)
	}
	waitfor.Cond(t, wait, "CPU time to grow between reads", func() (bool, string) {
		u, err := d.Stats(t.Context(), st.ID)
		return err == nil && u.CPUNanos > first.CPUNanos && u.At.After(first.At), fmt.Sprintf("%+v %v (first %+v)", u, err, first)
	})

	if _, err := d.Stop(t.Context(), st.ID, wait); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stats(t.Context(), st.ID); !errors.Is(err, runtime.ErrNotRunning) {
		t.Fatalf("stats of an exited attempt = %v, want ErrNotRunning", err)
	}
	if _, err := d.Stats(t.Context(), runtime.ContainerID{PodUID: testPod.UID, Name: "nope"}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("stats of an unknown attempt = %v, want ErrNotFound", err)
	}
}

// TestUsageFromMetrics decodes constructed cgroup v1 and v2 metrics, as
// task.Metrics returns them on either kind of host.
func TestUsageFromMetrics(t *testing.T) {
	anyOf := func(m proto.Message) typeurl.Any {
		t.Helper()
		a, err := typeurl.MarshalAnyToProto(m)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name    string
		in      typeurl.Any
		want    runtime.Usage
		wantErr string
	}{
		{
			name: "cgroup v1",
			in: anyOf(&cgroup1stats.Metrics{
				CPU: &cgroup1stats.CPUStat{Usage: &cgroup1stats.CPUUsage{Total: 1_500_000_000, User: 1_000_000_000}},
				Memory: &cgroup1stats.MemoryStat{
					TotalInactiveFile: 4 << 20, InactiveFile: 1 << 20,
					Usage: &cgroup1stats.MemoryEntry{Usage: 30 << 20, Limit: 64 << 20},
				},
			}),
			want: runtime.Usage{CPUNanos: 1_500_000_000, MemoryWorkingSetBytes: 26 << 20, MemoryLimitBytes: 64 << 20},
		},
		{
			name: "cgroup v1 without a limit",
			in: anyOf(&cgroup1stats.Metrics{
				CPU:    &cgroup1stats.CPUStat{Usage: &cgroup1stats.CPUUsage{Total: 7}},
				Memory: &cgroup1stats.MemoryStat{Usage: &cgroup1stats.MemoryEntry{Usage: 8 << 20, Limit: 0x7FFFFFFFFFFFF000}},
			}),
			want: runtime.Usage{CPUNanos: 7, MemoryWorkingSetBytes: 8 << 20},
		},
		{
			name: "cgroup v2",
			in: anyOf(&cgroup2stats.Metrics{
				CPU:    &cgroup2stats.CPUStat{UsageUsec: 2_250_000, UserUsec: 2_000_000},
				Memory: &cgroup2stats.MemoryStat{Usage: 50 << 20, InactiveFile: 10 << 20, UsageLimit: 128 << 20},
			}),
			want: runtime.Usage{CPUNanos: 2_250_000_000, MemoryWorkingSetBytes: 40 << 20, MemoryLimitBytes: 128 << 20},
		},
		{
			name: "cgroup v2 unlimited, cache above usage",
			in: anyOf(&cgroup2stats.Metrics{
				CPU:    &cgroup2stats.CPUStat{UsageUsec: 1},
				Memory: &cgroup2stats.MemoryStat{Usage: 1 << 20, InactiveFile: 2 << 20, UsageLimit: ^uint64(0)},
			}),
			want: runtime.Usage{CPUNanos: 1000},
		},
		{
			name: "cgroup v2 without memory stats",
			in:   anyOf(&cgroup2stats.Metrics{CPU: &cgroup2stats.CPUStat{UsageUsec: 3}}),
			want: runtime.Usage{CPUNanos: 3000},
		},
		{
			name:    "another message",
			in:      anyOf(durationpb.New(5)),
			wantErr: "unknown type",
		},
		{
			name:    "unregistered type",
			in:      &anypb.Any{TypeUrl: "example.com/no.such.Metrics", Value: []byte{1, 2}},
			wantErr: "no.such.Metrics",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := usageFromMetrics(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("usage = %+v, %v; want an error mentioning %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("usage = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
