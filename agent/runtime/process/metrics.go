package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/agent/runtime"
)

var _ runtime.Stats = (*Driver)(nil)

// atClkTck is the auxiliary vector entry holding the kernel's clock tick
// rate (AT_CLKTCK, sysconf(_SC_CLK_TCK)), the unit of /proc times.
const atClkTck = 17

// clockTicks is USER_HZ as the kernel tells it in the auxiliary vector;
// 100 (every Linux architecture Go runs on) if it cannot be read.
var clockTicks = sync.OnceValue(func() uint64 {
	auxv, err := unix.Auxv()
	if err == nil {
		for _, kv := range auxv {
			if kv[0] == atClkTck && kv[1] > 0 {
				return uint64(kv[1])
			}
		}
	}
	return 100
})

// Stats measures the attempt's process group: the sum over every process
// in /proc whose group is the attempt's (its leader's pid) of utime+stime
// and of cutime+cstime (the time of children they have waited for, so a
// child that exits keeps counting), and of the resident set size.
//
// There is no cgroup to read, so this is an approximation: the working set
// is plain RSS, which counts file pages shared with other processes more
// than once; processes that left the group (setsid, setpgid) are not
// counted; and the CPU time of a group member reaped by a process outside
// the group (an orphan reaped by init) drops out of the sum, which can
// then shrink. MemoryLimitBytes is 0: the driver sets no limits. Each call
// reads the stat file of every process on the host.
func (d *Driver) Stats(ctx context.Context, id runtime.ContainerID) (runtime.Usage, error) {
	a, st, err := d.attempts.Lookup(id)
	if err != nil {
		return runtime.Usage{}, err
	}
	r := &a.Data
	if !st.Running || !alive(r.PID, r.ProcStart) {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: %w", id, runtime.ErrNotRunning)
	}
	at := d.cfg.Clock()
	g, err := groupUsage("/proc", r.PID)
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: %w", id, err)
	}
	if g.procs == 0 {
		return runtime.Usage{}, fmt.Errorf("stats of container %s: %w", id, runtime.ErrNotRunning)
	}
	return runtime.Usage{
		CPUNanos:              ticksToNanos(g.ticks, clockTicks()),
		MemoryWorkingSetBytes: g.rssPages * uint64(os.Getpagesize()),
		At:                    at,
	}, nil
}

// ticksToNanos converts clock ticks at hz to nanoseconds without
// overflowing for any realistic uptime.
func ticksToNanos(ticks, hz uint64) uint64 {
	return ticks/hz*1e9 + ticks%hz*1e9/hz
}

// groupTotals is the sum over the processes of one process group.
type groupTotals struct {
	procs    int
	ticks    uint64 // utime+stime+cutime+cstime
	rssPages uint64
}

// groupUsage sums the usage of the processes in group pgid, reading
// root/<pid>/stat of every process. Processes that vanish during the scan
// are skipped.
func groupUsage(root string, pgid int) (groupTotals, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return groupTotals{}, fmt.Errorf("list processes: %w", err)
	}
	var g groupTotals
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(root + "/" + e.Name() + "/stat")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				continue // exited meanwhile
			}
			return groupTotals{}, fmt.Errorf("read process stat: %w", err)
		}
		s, err := parseStatUsage(b)
		if err != nil {
			return groupTotals{}, err
		}
		if s.pgrp != pgid {
			continue
		}
		g.procs++
		g.ticks += s.ticks
		g.rssPages += s.rssPages
	}
	return g, nil
}

// statUsage is what Stats reads from one /proc/<pid>/stat.
type statUsage struct {
	pgrp     int    // field 5
	ticks    uint64 // fields 14-17: utime, stime, cutime, cstime
	rssPages uint64 // field 24
}

// parseStatUsage parses the fields Stats needs, counted from the last ')'
// as parseProcStat does (comm may hold spaces and parentheses).
func parseStatUsage(b []byte) (statUsage, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statUsage{}, fmt.Errorf("parse /proc stat %q: no ')'", b)
	}
	// fields[0] is field 3 (state): field n is fields[n-3].
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 22 {
		return statUsage{}, fmt.Errorf("parse /proc stat %q: too few fields", b)
	}
	var s statUsage
	var err error
	if s.pgrp, err = strconv.Atoi(fields[2]); err != nil {
		return statUsage{}, fmt.Errorf("parse /proc stat process group: %w", err)
	}
	for n := 14; n <= 17; n++ {
		// cutime and cstime are signed in the kernel's format; they are
		// never negative in practice.
		t, err := strconv.ParseInt(fields[n-3], 10, 64)
		if err != nil {
			return statUsage{}, fmt.Errorf("parse /proc stat field %d: %w", n, err)
		}
		s.ticks += uint64(max(t, 0))
	}
	rss, err := strconv.ParseInt(fields[21], 10, 64)
	if err != nil {
		return statUsage{}, fmt.Errorf("parse /proc stat rss: %w", err)
	}
	s.rssPages = uint64(max(rss, 0))
	return s, nil
}
