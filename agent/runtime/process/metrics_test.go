package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// TestStats: the CPU time of a busy child of the container's leader counts
// (the whole process group is summed), grows between reads, and the
// working set is at least the leader's own VmRSS; an exited attempt has
// none.
func TestStats(t *testing.T) {
	d := newDriver(t, t.TempDir())
	// The leader only waits; its child, in its group, burns CPU.
	st := start(t, d, sh("burn", "yes >/dev/null & wait"), 0)

	var first runtime.Usage
	waitfor.Cond(t, wait, "the busy child's CPU time to show", func() (bool, string) {
		u, err := d.Stats(t.Context(), st.ID)
		first = u
		return err == nil && u.CPUNanos >= uint64(50*time.Millisecond), fmt.Sprintf("%+v %v", u, err)
	})
	if first.At.IsZero() || first.MemoryLimitBytes != 0 {
		t.Fatalf("usage %+v: want At set and no limit", first)
	}
	waitfor.Cond(t, wait, "CPU time to grow between reads", func() (bool, string) {
		u, err := d.Stats(t.Context(), st.ID)
		return err == nil && u.CPUNanos > first.CPUNanos && u.At.After(first.At), fmt.Sprintf("%+v %v (first %+v)", u, err, first)
	})

	rss := vmRSS(t, st.PID)
	u, err := d.Stats(t.Context(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.MemoryWorkingSetBytes < rss {
		t.Fatalf("working set %d < the leader's VmRSS %d", u.MemoryWorkingSetBytes, rss)
	}

	if _, err := d.Stop(t.Context(), st.ID, wait); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stats(t.Context(), st.ID); !errors.Is(err, runtime.ErrNotRunning) {
		t.Fatalf("stats of an exited attempt = %v, want ErrNotRunning", err)
	}
	unknown := runtime.ContainerID{PodUID: testPod.UID, Name: "nope"}
	if _, err := d.Stats(t.Context(), unknown); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("stats of an unknown attempt = %v, want ErrNotFound", err)
	}
}

// vmRSS reads VmRSS of /proc/pid/status in bytes.
func vmRSS(t *testing.T, pid int) uint64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func TestParseStatUsage(t *testing.T) {
	// Fields 3.. of a real line: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
	// threads itrealvalue starttime vsize rss ...
	const tail = " S 1 4242 4242 0 -1 4194560 100 0 0 0 %s 20 0 1 0 123456 1000 %s 18446744073709551615"
	tests := []struct {
		name    string
		line    string
		want    statUsage
		wantErr bool
	}{
		{"plain", "4243 (yes) " + fmt.Sprintf(tail[1:], "30 7 2 1", "512"), statUsage{pgrp: 4242, ticks: 40, rssPages: 512}, false},
		{"comm with spaces and parens", "4243 (a) (b c) " + fmt.Sprintf(tail[1:], "1 1 0 0", "3"), statUsage{pgrp: 4242, ticks: 2, rssPages: 3}, false},
		{"negative child times count as zero", "1 (x) " + fmt.Sprintf(tail[1:], "5 5 -1 -1", "1"), statUsage{pgrp: 4242, ticks: 10, rssPages: 1}, false},
		{"no paren", "1 x S 1 2", statUsage{}, true},
		{"too short", "1 (x) S 1 2 3", statUsage{}, true},
		{"bad utime", "1 (x) " + fmt.Sprintf(tail[1:], "a 5 0 0", "1"), statUsage{}, true},
		{"bad rss", "1 (x) " + fmt.Sprintf(tail[1:], "1 1 0 0", "lots"), statUsage{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatUsage([]byte(tt.line))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parse %q = %+v, %v; want %+v (error %v)", tt.line, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTicksToNanos(t *testing.T) {
	tests := []struct{ ticks, hz, want uint64 }{
		{0, 100, 0},
		{1, 100, 10_000_000},
		{250, 100, 2_500_000_000},
		{3, 1000, 3_000_000},
		{7, 300, 23_333_333},
		{1 << 40, 100, (1 << 40) * 10_000_000}, // years of CPU: no overflow
	}
	for _, tt := range tests {
		if got := ticksToNanos(tt.ticks, tt.hz); got != tt.want {
			t.Errorf("ticksToNanos(%d, %d) = %d, want %d", tt.ticks, tt.hz, got, tt.want)
		}
	}
	if hz := clockTicks(); hz == 0 || hz > 10000 {
		t.Errorf("clock ticks = %d", hz)
	}
}
