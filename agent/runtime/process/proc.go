package process

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// procStat is what the driver reads from /proc/<pid>/stat.
type procStat struct {
	state byte   // field 3: R, S, D, Z (zombie), X (dead), ...
	start uint64 // field 22: start time in clock ticks after boot
}

// errGone: no process has this pid.
var errGone = errors.New("process gone")

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return procStat{}, errGone
		}
		return procStat{}, err
	}
	return parseProcStat(b)
}

// parseProcStat parses "pid (comm) state ppid ... starttime ...". comm may
// hold spaces and parentheses, so fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc stat %q: no ')'", b)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc stat %q: too few fields", b)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat start time: %w", err)
	}
	return procStat{state: fields[0][0], start: start}, nil
}

// exitInfo is how an attempt ended.
type exitInfo struct {
	code    int
	reason  string
	message string
}

func exitFromWaitStatus(ws syscall.WaitStatus) exitInfo {
	switch {
	case ws.Exited():
		e := exitInfo{code: ws.ExitStatus(), reason: runtime.ReasonError}
		if e.code == 0 {
			e.reason = runtime.ReasonCompleted
		}
		return e
	case ws.Signaled():
		sig := ws.Signal()
		return exitInfo{
			code:    128 + int(sig),
			reason:  runtime.ReasonError,
			message: fmt.Sprintf("killed by signal %d (%s)", int(sig), sig),
		}
	}
	return unknownExit(fmt.Sprintf("unexpected wait status %#x", uint32(ws)))
}

func unknownExit(msg string) exitInfo {
	return exitInfo{code: -1, reason: runtime.ReasonUnknown, message: msg}
}

// checkExit looks at the process pid that started at start (0: unknown) and
// returns its exit once it has exited. For a child of this process it reaps
// it and reads the exit code; for any other process the code is unknown.
//
// The process group (which has the leader's pid as id) is killed while the
// leader is a zombie: the zombie keeps the id reserved, so the signal cannot
// reach a newcomer that reused the pid.
func checkExit(pid int, start uint64) (exitInfo, bool) {
	st, err := readProcStat(pid)
	switch {
	case err != nil && !errors.Is(err, errGone):
		return exitInfo{}, false // cannot tell; look again later
	case err != nil || (start != 0 && st.start != start):
		return unknownExit("exited while not watched by this agent; exit code unknown"), true
	case st.state != 'Z' && st.state != 'X':
		return exitInfo{}, false
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // leftovers of the container
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err == nil && wpid == pid {
			return exitFromWaitStatus(ws), true
		}
		if err == nil && wpid == 0 {
			// Our child but not yet waitable (state X is transient).
			return exitInfo{}, false
		}
		// ECHILD: a zombie of another parent, which will reap it.
		return unknownExit("exited; not a child of this agent, exit code unknown"), true
	}
}

// alive reports whether pid is still the process that started at start.
func alive(pid int, start uint64) bool {
	st, err := readProcStat(pid)
	if err != nil {
		return !errors.Is(err, errGone)
	}
	return (start == 0 || st.start == start) && st.state != 'Z' && st.state != 'X'
}

// lookPath finds file like a shell would with the given PATH. A name with a
// slash is taken as is, relative to dir. Relative PATH entries are skipped,
// as os/exec refuses them.
func lookPath(file, path, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: executable file not found in PATH %q", file, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: not an executable file", p)
	}
	return nil
}

// pathOf returns the PATH in env, if any.
func pathOf(env []string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return v, true
		}
	}
	return "", false
}
