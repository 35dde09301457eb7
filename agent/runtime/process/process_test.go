package process

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/layout"
	"github.com/shoal-dev/shoal/agent/runtime/runtimetest"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// helperEnv makes the test binary act as a short-lived agent (see
// TestReadoptionAfterAgentExit).
const helperEnv = "SHOAL_PROCESS_TEST_AGENT_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(helperAgent(dir))
	}
	goleak.VerifyTestMain(m)
}

// helperAgent starts one container, prints its pid and exits without
// stopping it or closing the driver, like an agent that crashes.
func helperAgent(dir string) int {
	d, err := New(Config{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, err := d.Start(context.Background(), testPod, sh("orphan", "echo started; exec sleep 1000"), 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(st.PID)
	return 0
}

const wait = 10 * time.Second

var testPod = runtime.Pod{UID: "uid-1", Namespace: "default", Name: "web"}

func newDriver(t *testing.T, dir string, mods ...func(*Config)) *Driver {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.PollInterval = 50 * time.Millisecond
	for _, m := range mods {
		m(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if sts, err := d.List(); err == nil {
			for _, st := range sts {
				if st.Running {
					if _, err := d.Stop(context.Background(), st.ID, 0); err != nil {
						t.Errorf("cleanup: stop %s: %v", st.ID, err)
					}
				}
			}
		}
		d.Close()
	})
	return d
}

func sh(name, script string) runtime.ContainerSpec {
	return runtime.ContainerSpec{Name: name, Command: []string{"sh", "-c", script}}
}

// start starts c and makes sure its process group is gone when the test
// ends, even if the test fails before stopping it.
func start(t *testing.T, d *Driver, c runtime.ContainerSpec, attempt int) runtime.Status {
	t.Helper()
	st, err := d.Start(t.Context(), testPod, c, attempt)
	if err != nil {
		t.Fatalf("start %s: %v", c.Name, err)
	}
	ps, _ := readProcStat(st.PID)
	t.Cleanup(func() {
		if alive(st.PID, ps.start) {
			_ = syscall.Kill(-st.PID, syscall.SIGKILL)
		}
	})
	return st
}

func waitExited(t *testing.T, d *Driver, id runtime.ContainerID) runtime.Status {
	t.Helper()
	var st runtime.Status
	waitfor.Cond(t, wait, id.String()+" to exit", func() (bool, string) {
		var err error
		st, err = d.Status(id)
		return err == nil && !st.Running, fmt.Sprintf("%+v %v", st, err)
	})
	return st
}

func nextEvent(t *testing.T, d *Driver) runtime.Status {
	t.Helper()
	return runtimetest.NextEvent(t, d, wait)
}

func readAll(t *testing.T, d *Driver, id runtime.ContainerID) string {
	t.Helper()
	r, err := d.Logs(t.Context(), id, false)
	if err != nil {
		t.Fatalf("logs %s: %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read logs %s: %v", id, err)
	}
	return string(b)
}

func TestExitCodesAndReasons(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		wantCode   int
		wantReason string
	}{
		{"exit 0", "exit 0", 0, runtime.ReasonCompleted},
		{"exit 3", "exit 3", 3, runtime.ReasonError},
		{"killed by SIGKILL", "kill -KILL $$", 137, runtime.ReasonError},
		{"killed by SIGTERM", "kill -TERM $$", 143, runtime.ReasonError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, t.TempDir())
			st := start(t, d, sh("c", tt.script), 0)
			if st.PID <= 0 || st.StartedAt.IsZero() || st.Pod != testPod {
				t.Fatalf("start status = %+v", st)
			}
			ev := nextEvent(t, d)
			if ev.ID != st.ID || ev.Running || ev.ExitCode != tt.wantCode || ev.Reason != tt.wantReason || ev.FinishedAt.IsZero() {
				t.Fatalf("event = %+v, want code %d reason %s", ev, tt.wantCode, tt.wantReason)
			}
			got, err := d.Status(st.ID)
			if err != nil || got != ev {
				t.Fatalf("status = %+v, %v; want the event %+v", got, err, ev)
			}
		})
	}
}

func TestStopGrace(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		grace    time.Duration
		wantCode int
		minTime  time.Duration // Stop must not return before (grace honoured)
		maxTime  time.Duration
	}{
		{"exits on TERM", "exec sleep 1000", 10 * time.Second, 143, 0, 5 * time.Second},
		{"TERM ignored, killed after grace", "trap '' TERM; sleep 1000", 300 * time.Millisecond, 137, 300 * time.Millisecond, 5 * time.Second},
		{"zero grace kills at once", "trap '' TERM; sleep 1000", 0, 137, 0, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, t.TempDir())
			st := start(t, d, sh("c", tt.script), 0)
			// Let sh install its trap: wait until it has a child (sleep).
			waitfor.True(t, wait, "sh to start sleep", func() bool {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", st.PID, st.PID))
				return len(bytes.TrimSpace(b)) > 0 || strings.HasPrefix(tt.script, "exec")
			})
			t0 := time.Now()
			got, err := d.Stop(t.Context(), st.ID, tt.grace)
			took := time.Since(t0)
			if err != nil {
				t.Fatalf("stop: %v", err)
			}
			if got.Running || got.ExitCode != tt.wantCode || got.Reason != runtime.ReasonError {
				t.Fatalf("stop status = %+v, want exit %d", got, tt.wantCode)
			}
			if took < tt.minTime || took > tt.maxTime {
				t.Fatalf("stop took %s, want between %s and %s", took, tt.minTime, tt.maxTime)
			}
			again, err := d.Stop(t.Context(), st.ID, tt.grace)
			if err != nil || again != got {
				t.Fatalf("second stop = %+v, %v; want %+v", again, err, got)
			}
			if ev := nextEvent(t, d); ev != got {
				t.Fatalf("event = %+v, want %+v", ev, got)
			}
		})
	}
}

func TestStopKillsWholeGroupAndLeftovers(t *testing.T) {
	d := newDriver(t, t.TempDir())
	// The main process exits at once, leaving a background child in its
	// group: the child dies with the container.
	st := start(t, d, sh("c", "sleep 1000 & echo $! > child; exit 0"), 0)
	ex := waitExited(t, d, st.ID)
	if ex.ExitCode != 0 || ex.Reason != runtime.ReasonCompleted {
		t.Fatalf("status = %+v", ex)
	}
	b, err := os.ReadFile(filepath.Join(d.files.Container(st.ID), "child"))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, wait, "the background child to be killed", func() bool { return !alive(child, 0) })
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name    string
		pod     runtime.Pod
		spec    runtime.ContainerSpec
		wantErr string
	}{
		{"args without command", testPod, runtime.ContainerSpec{Name: "app", Args: []string{"x"}},
			"container app: command is required on the process runtime"},
		{"no command", testPod, runtime.ContainerSpec{Name: "app"},
			"container app: command is required on the process runtime"},
		{"binary not found", testPod, runtime.ContainerSpec{Name: "app", Command: []string{"no-such-binary-xyz"}},
			"executable file not found"},
		{"binary not in the container's PATH", testPod,
			runtime.ContainerSpec{Name: "app", Command: []string{"sh"}, Env: []string{"PATH=/nonexistent"}},
			"executable file not found"},
		{"working dir escapes the pod", testPod, runtime.ContainerSpec{Name: "app", Command: []string{"true"}, WorkingDir: "../x"},
			"must stay inside the pod's directory"},
		{"missing absolute working dir", testPod, runtime.ContainerSpec{Name: "app", Command: []string{"true"}, WorkingDir: "/nonexistent/dir"},
			"no such file or directory"},
		{"bad pod uid", runtime.Pod{UID: "a/b"}, runtime.ContainerSpec{Name: "app", Command: []string{"true"}},
			"not a valid name"},
		{"bad name", testPod, runtime.ContainerSpec{Name: "..", Command: []string{"true"}},
			"not a valid name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, t.TempDir())
			_, err := d.Start(t.Context(), tt.pod, tt.spec, 0)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("start error = %v, want it to contain %q", err, tt.wantErr)
			}
			if sts, _ := d.List(); len(sts) != 0 {
				t.Fatalf("a failed start left %+v", sts)
			}
			if layout.ValidName(tt.pod.UID) && layout.ValidName(tt.spec.Name) {
				id := runtime.ContainerID{PodUID: tt.pod.UID, Name: tt.spec.Name}
				for _, p := range []string{d.files.Log(id), d.statePath(id)} {
					if _, err := os.Stat(p); err == nil {
						t.Errorf("a failed start left %s", p)
					}
				}
			}
		})
	}

	t.Run("attempt exists", func(t *testing.T) {
		d := newDriver(t, t.TempDir())
		start(t, d, sh("c", "exit 0"), 0)
		if _, err := d.Start(t.Context(), testPod, sh("c", "exit 0"), 0); !errors.Is(err, runtime.ErrExists) {
			t.Fatalf("second start = %v, want ErrExists", err)
		}
	})
}

func TestEnvAndWorkingDir(t *testing.T) {
	tmp := t.TempDir()
	absDir := t.TempDir()
	tests := []struct {
		name    string
		spec    runtime.ContainerSpec
		wantEnv []string // nil: do not check
		wantDir string   // relative to Dir/pods/<uid> unless absolute
	}{
		{"env exactly as given plus PATH",
			runtime.ContainerSpec{Name: "a", Command: []string{"env"}, Env: []string{"FOO=bar", "EMPTY="}},
			[]string{"FOO=bar", "EMPTY=", "PATH=" + os.Getenv("PATH")}, ""},
		{"PATH from the spec",
			runtime.ContainerSpec{Name: "b", Command: []string{"env"}, Env: []string{"PATH=/usr/bin:/bin"}},
			[]string{"PATH=/usr/bin:/bin"}, ""},
		{"default working dir", runtime.ContainerSpec{Name: "c", Command: []string{"pwd"}}, nil, "c"},
		{"relative working dir", runtime.ContainerSpec{Name: "d", Command: []string{"pwd"}, WorkingDir: "data/x"}, nil, "data/x"},
		{"absolute working dir", runtime.ContainerSpec{Name: "e", Command: []string{"pwd"}, WorkingDir: absDir}, nil, absDir},
	}
	d := newDriver(t, tmp)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := start(t, d, tt.spec, i)
			if ex := waitExited(t, d, st.ID); ex.ExitCode != 0 {
				t.Fatalf("exit = %+v; log: %s", ex, readAll(t, d, st.ID))
			}
			out := readAll(t, d, st.ID)
			if tt.wantEnv != nil {
				got := strings.Split(strings.TrimSpace(out), "\n")
				if !slices.Equal(got, tt.wantEnv) {
					t.Fatalf("env = %q, want %q", got, tt.wantEnv)
				}
			}
			if tt.wantDir != "" {
				want := tt.wantDir
				if !filepath.IsAbs(want) {
					want = filepath.Join(d.files.Pod(testPod.UID), want)
				}
				want, _ = filepath.EvalSymlinks(want)
				if got := strings.TrimSpace(out); got != want {
					t.Fatalf("working dir = %q, want %q", got, want)
				}
			}
		})
	}
}

// TestResolvConf checks that a spec's ResolvConf is written to the pod's
// directory and named in SHOAL_RESOLV_CONF by an absolute path, even with a
// relative Dir, and that it survives a re-adoption's scan.
func TestResolvConf(t *testing.T) {
	t.Chdir(t.TempDir())
	d := newDriver(t, "state")
	want, err := filepath.Abs(filepath.Join("state", "pods", testPod.UID, "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    runtime.ContainerSpec
		wantOut string
	}{
		{"written and named",
			runtime.ContainerSpec{Name: "a", Command: []string{"sh", "-c", `env | grep -c ^SHOAL_RESOLV_CONF=; echo "$SHOAL_RESOLV_CONF"; cat "$SHOAL_RESOLV_CONF"`},
				ResolvConf: []byte("nameserver 10.0.0.1\n"), Env: []string{"SHOAL_RESOLV_CONF=/elsewhere"}},
			"1\n" + want + "\nnameserver 10.0.0.1\n"},
		{"replaced at the next start",
			runtime.ContainerSpec{Name: "b", Command: []string{"sh", "-c", `cat "$SHOAL_RESOLV_CONF"`}, ResolvConf: []byte("nameserver 10.0.0.2\n")},
			"nameserver 10.0.0.2\n"},
		{"none without ResolvConf",
			runtime.ContainerSpec{Name: "c", Command: []string{"sh", "-c", `echo "[$SHOAL_RESOLV_CONF]"`}},
			"[]\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := start(t, d, tt.spec, i)
			if ex := waitExited(t, d, st.ID); ex.ExitCode != 0 {
				t.Fatalf("exit = %+v; log: %s", ex, readAll(t, d, st.ID))
			}
			if out := readAll(t, d, st.ID); out != tt.wantOut {
				t.Fatalf("output %q, want %q", out, tt.wantOut)
			}
		})
	}
	if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("stat %s: %v, %v; want mode 0644", want, fi, err)
	}
	// The file sits among the container directories: a new driver's scan
	// must not trip over it.
	d.Close()
	d2 := newDriver(t, "state")
	if sts, err := d2.List(); err != nil || len(sts) != len(tests) {
		t.Fatalf("List after restart = %d attempts, %v; want %d", len(sts), err, len(tests))
	}
}

func TestLogs(t *testing.T) {
	d := newDriver(t, t.TempDir())

	t.Run("stdout and stderr in one file, kept after exit", func(t *testing.T) {
		st := start(t, d, sh("both", "echo out; echo err >&2; printf partial"), 0)
		waitExited(t, d, st.ID)
		if got, want := readAll(t, d, st.ID), "out\nerr\npartial"; got != want {
			t.Fatalf("logs = %q, want %q", got, want)
		}
	})

	t.Run("follow across output until exit", func(t *testing.T) {
		st := start(t, d, sh("follow", "echo first; while [ ! -e gate ]; do sleep 0.02; done; echo second; exit 2"), 0)
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		defer cancel()
		r, err := d.Logs(ctx, st.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		br := bufio.NewReader(r)
		if line, err := br.ReadString('\n'); line != "first\n" {
			t.Fatalf("first line = %q, %v", line, err)
		}
		if err := os.WriteFile(filepath.Join(d.files.Container(st.ID), "gate"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(br) // ends with io.EOF once the attempt has exited
		if err != nil || string(rest) != "second\n" {
			t.Fatalf("rest = %q, %v", rest, err)
		}
	})

	t.Run("follow ends with ctx", func(t *testing.T) {
		st := start(t, d, sh("quiet", "exec sleep 1000"), 0)
		ctx, cancel := context.WithCancel(t.Context())
		r, err := d.Logs(ctx, st.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cancel()
		if b, err := io.ReadAll(r); !errors.Is(err, context.Canceled) || len(b) != 0 {
			t.Fatalf("read = %q, %v; want context.Canceled", b, err)
		}
	})

	t.Run("previous attempt kept until Remove", func(t *testing.T) {
		old := start(t, d, sh("restarts", "echo attempt0; exit 1"), 0)
		waitExited(t, d, old.ID)
		cur := start(t, d, sh("restarts", "echo attempt1"), 1)
		waitExited(t, d, cur.ID)
		if got := readAll(t, d, old.ID); got != "attempt0\n" {
			t.Fatalf("previous logs = %q", got)
		}
		if err := d.Remove(old.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Logs(t.Context(), old.ID, false); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("logs after remove: %v, want ErrNotFound", err)
		}
		if got := readAll(t, d, cur.ID); got != "attempt1\n" {
			t.Fatalf("current logs = %q", got)
		}
	})
}

func TestLogRotation(t *testing.T) {
	const lines, maxBytes = 150, 200
	d := newDriver(t, t.TempDir(), func(c *Config) {
		c.MaxLogBytes = maxBytes
		c.LogCheckInterval = 5 * time.Millisecond
	})
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo line$i; i=$((i+1)); sleep 0.005; done; exec sleep 1000`, lines)
	st := start(t, d, sh("chatty", script), 0)

	// A follower from the start sees the lines once, in order, across
	// rotations. Copy-truncate may lose a line written in the instant
	// between the last copy and the truncate (see internal/logfile), so a
	// few may be missing, never repeated or reordered.
	r, err := d.Logs(t.Context(), st.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(r)
	last, seen := -1, 0
	for last < lines-1 && sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "line"))
		if err != nil || n <= last {
			t.Fatalf("follow read %q after line%d", sc.Text(), last)
		}
		last, seen = n, seen+1
	}
	r.Close()
	if last != lines-1 || seen < lines*9/10 {
		t.Fatalf("follow read %d lines, the last line%d; want line%d and at most a few lost", seen, last, lines-1)
	}
	if seen != lines {
		t.Logf("%d lines lost to copy-truncate", lines-seen)
	}

	path := d.files.Log(st.ID)
	waitfor.Cond(t, wait, "the log to be rotated below the limit", func() (bool, string) {
		fi, err := os.Stat(path)
		if err != nil {
			return false, err.Error()
		}
		_, err1 := os.Stat(path + ".1")
		return err1 == nil && fi.Size() <= maxBytes, fmt.Sprintf("size %d, .1: %v", fi.Size(), err1)
	})
	// A new reader gets the rotated part, then the current one.
	got := readAll(t, d, st.ID)
	if !strings.HasSuffix(got, fmt.Sprintf("line%d\n", lines-1)) {
		t.Fatalf("logs after rotation end with %q", got[max(0, len(got)-40):])
	}
	if len(got) > 3*maxBytes {
		t.Fatalf("logs after rotation hold %d bytes, want about two files' worth", len(got))
	}
}

func TestExec(t *testing.T) {
	d := newDriver(t, t.TempDir())
	spec := sh("app", "exec sleep 1000")
	spec.Env = []string{"FOO=bar"}
	spec.WorkingDir = "work"
	st := start(t, d, spec, 0)
	workDir, err := filepath.EvalSymlinks(filepath.Join(d.files.Pod(testPod.UID), "work"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		cmd      []string
		stdin    string
		wantCode int
		wantOut  string
	}{
		{"env, working dir and exit code", []string{"sh", "-c", "echo $FOO; pwd; echo oops >&2; exit 5"}, "", 5,
			"bar\n" + workDir + "\n"},
		{"stdin", []string{"cat"}, "hello", 0, "hello"},
		{"killed by a signal", []string{"sh", "-c", "kill -KILL $$"}, "", 137, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code, err := d.Exec(t.Context(), st.ID, tt.cmd, strings.NewReader(tt.stdin), &stdout, &stderr)
			if err != nil || code != tt.wantCode || stdout.String() != tt.wantOut {
				t.Fatalf("exec = %d, %v, stdout %q (stderr %q); want %d, %q", code, err, stdout.String(), stderr.String(), tt.wantCode, tt.wantOut)
			}
		})
	}

	t.Run("ctx cancel kills it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		_, err := d.Exec(ctx, st.ID, []string{"sleep", "1000"}, nil, io.Discard, io.Discard)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 5*time.Second {
			t.Fatalf("exec = %v after %s, want DeadlineExceeded soon", err, time.Since(t0))
		}
	})

	t.Run("not running", func(t *testing.T) {
		if _, err := d.Stop(t.Context(), st.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		_, err := d.Exec(t.Context(), st.ID, []string{"true"}, nil, io.Discard, io.Discard)
		if !errors.Is(err, runtime.ErrNotRunning) {
			t.Fatalf("exec = %v, want ErrNotRunning", err)
		}
	})
}

func TestRemove(t *testing.T) {
	d := newDriver(t, t.TempDir())
	st := start(t, d, sh("c", "exec sleep 1000"), 0)
	if err := d.Remove(st.ID); !errors.Is(err, runtime.ErrRunning) {
		t.Fatalf("remove running = %v, want ErrRunning", err)
	}
	if _, err := d.Stop(t.Context(), st.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(st.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.files.Log(st.ID), d.statePath(st.ID)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if _, err := d.Status(st.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("status after remove = %v, want ErrNotFound", err)
	}
	if err := d.Remove(st.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("second remove = %v, want ErrNotFound", err)
	}
	if _, err := d.Stop(t.Context(), st.ID, 0); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("stop after remove = %v, want ErrNotFound", err)
	}
}

func TestRemovePod(t *testing.T) {
	d := newDriver(t, t.TempDir())
	a := start(t, d, sh("a", "exec sleep 1000"), 0)
	b := start(t, d, sh("b", "trap '' TERM; sleep 1000"), 0)
	c := start(t, d, sh("c", "exit 0"), 0)
	waitExited(t, d, c.ID)
	if err := d.RemovePod(t.Context(), testPod.UID, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if sts, _ := d.List(); len(sts) != 0 {
		t.Fatalf("list after RemovePod = %+v", sts)
	}
	if _, err := os.Stat(d.files.Pod(testPod.UID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pod dir: %v, want it gone", err)
	}
	for _, st := range []runtime.Status{a, b} {
		if alive(st.PID, 0) {
			t.Errorf("%s (pid %d) still alive", st.ID, st.PID)
		}
	}
	if err := d.RemovePod(t.Context(), "unknown-pod", time.Second); err != nil {
		t.Fatalf("RemovePod of an unknown pod: %v", err)
	}
}

func TestReadoption(t *testing.T) {
	dir := t.TempDir()
	a := newDriver(t, dir)
	long := start(t, a, sh("long", "echo hello; exec sleep 1000"), 0)
	gated := start(t, a, sh("gated", "while [ ! -e gate ]; do sleep 0.02; done; exit 7"), 0)
	done := start(t, a, sh("done", "exit 0"), 0)
	waitExited(t, a, done.ID)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-a.Events(); ok {
		t.Fatal("events channel of a closed driver is open")
	}
	if _, err := a.List(); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("list on a closed driver = %v", err)
	}
	if !alive(long.PID, 0) {
		t.Fatal("Close stopped a container")
	}

	// gated exits while no driver watches it.
	if err := os.WriteFile(filepath.Join(dir, "pods", testPod.UID, "gated", "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, wait, "gated to exit", func() bool { return !alive(gated.PID, 0) })

	b := newDriver(t, dir)
	sts, err := b.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 3 {
		t.Fatalf("list = %+v, want 3 attempts", sts)
	}
	byName := map[string]runtime.Status{}
	for _, st := range sts {
		byName[st.ID.Name] = st
	}
	if st := byName["long"]; !st.Running || st.PID != long.PID || !st.StartedAt.Equal(long.StartedAt) || st.Pod != testPod {
		t.Fatalf("re-adopted long = %+v, want running pid %d", st, long.PID)
	}
	// The test process is still gated's parent, so its exit code is known;
	// after a real agent restart it would be Unknown (see TestReadoptionUnknown).
	if st := byName["gated"]; st.Running || st.ExitCode != 7 || st.Reason != runtime.ReasonError {
		t.Fatalf("gated = %+v, want exited 7", st)
	}
	if st := byName["done"]; st.Running || st.ExitCode != 0 || st.Reason != runtime.ReasonCompleted {
		t.Fatalf("done = %+v, want completed", st)
	}
	if got := readAll(t, b, long.ID); got != "hello\n" {
		t.Fatalf("logs of the re-adopted attempt = %q", got)
	}
	var out bytes.Buffer
	if code, err := b.Exec(t.Context(), long.ID, []string{"pwd"}, nil, &out, io.Discard); err != nil || code != 0 {
		t.Fatalf("exec in the re-adopted attempt: %d, %v", code, err)
	}

	st, err := b.Stop(t.Context(), long.ID, 5*time.Second)
	if err != nil || st.Running || st.ExitCode != 143 {
		t.Fatalf("stop from the new driver = %+v, %v", st, err)
	}
	if ev := nextEvent(t, b); ev.ID != long.ID {
		t.Fatalf("event = %+v", ev)
	}

	// A third driver sees the exits recorded on disk, the same way.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := newDriver(t, dir)
	sts2, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sts2, func(s runtime.Status) bool { return s.ID == long.ID })
	if len(sts2) != 3 || i < 0 || !statusEqual(sts2[i], st) {
		t.Fatalf("third driver: %+v, want long as %+v", sts2, st)
	}
}

func TestReadoptionAfterAgentExit(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper agent: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("helper agent printed %q", out)
	}
	t.Cleanup(func() {
		if alive(pid, 0) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	if !alive(pid, 0) {
		t.Fatal("the container died with its agent")
	}

	d := newDriver(t, dir)
	id := runtime.ContainerID{PodUID: testPod.UID, Name: "orphan"}
	st, err := d.Status(id)
	if err != nil || !st.Running || st.PID != pid {
		t.Fatalf("re-adopted = %+v, %v; want running pid %d", st, err, pid)
	}
	var stdout bytes.Buffer
	if code, err := d.Exec(t.Context(), id, []string{"sh", "-c", "echo exec"}, nil, &stdout, io.Discard); code != 0 || err != nil || stdout.String() != "exec\n" {
		t.Fatalf("exec = %d, %v, %q", code, err, stdout.String())
	}
	// Not our child: its exit is seen by polling and its code is unknown.
	st, err = d.Stop(t.Context(), id, 5*time.Second)
	if err != nil || st.Running || st.Reason != runtime.ReasonUnknown || st.ExitCode != -1 {
		t.Fatalf("stop = %+v, %v; want exited Unknown", st, err)
	}
	if alive(pid, 0) {
		t.Fatal("process still alive after Stop")
	}
	if got := readAll(t, d, id); got != "started\n" {
		t.Fatalf("logs = %q", got)
	}
}

func statusEqual(a, b runtime.Status) bool {
	return a.ID == b.ID && a.Pod == b.Pod && a.Running == b.Running && a.PID == b.PID &&
		a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt) &&
		a.ExitCode == b.ExitCode && a.Reason == b.Reason && a.Message == b.Message
}

func TestReadoptionUnknown(t *testing.T) {
	dir := t.TempDir()
	writer := &Driver{cfg: Config{Dir: dir}, files: layout.Dir(dir)}

	// A process that is gone (reaped by someone else).
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	self, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	recs := []record{
		{Container: "dead", PID: dead.Process.Pid, ProcStart: 1},
		// A live pid that is not the process started: pid reuse. It must
		// be reported exited and never signalled (it is this test).
		{Container: "reused", PID: os.Getpid(), ProcStart: self.start + 1},
	}
	for i := range recs {
		recs[i].Pod = testPod
		recs[i].StartedAt = time.Now()
		if err := os.MkdirAll(writer.files.Container(recs[i].id()), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writer.writeRecord(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Files that are not records are left alone.
	junk := map[string]string{
		"pods/uid-1/dead/notes.json": "{}",
		"pods/uid-1/dead/1.json":     "not json",
		"pods/uid-1/other/0.json":    `{"pod":{"uid":"uid-9"},"container":"x","pid":1}`,
	}
	for p, content := range junk {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	d := newDriver(t, dir)
	sts, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 {
		t.Fatalf("list = %+v, want the 2 records", sts)
	}
	for _, st := range sts {
		if st.Running || st.ExitCode != -1 || st.Reason != runtime.ReasonUnknown || st.FinishedAt.IsZero() {
			t.Fatalf("%s = %+v, want exited Unknown -1", st.ID, st)
		}
		if _, err := d.Stop(t.Context(), st.ID, 0); err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range junk {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != content {
			t.Fatalf("%s changed: %q, %v", p, b, err)
		}
	}
}

func TestClose(t *testing.T) {
	d := newDriver(t, t.TempDir())
	st := start(t, d, sh("c", "exec sleep 1000"), 0)
	r, err := d.Logs(context.Background(), st.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := New(Config{Dir: d.cfg.Dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second driver on the same dir: %v, want in use", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("follower after Close: %v, want ErrClosed", err)
	}
	if _, err := d.Start(t.Context(), testPod, sh("d", "true"), 0); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("start after Close = %v", err)
	}
	// The container outlives the driver; a new one stops it.
	d2 := newDriver(t, d.cfg.Dir)
	if _, err := d2.Stop(t.Context(), st.ID, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestParseProcStat(t *testing.T) {
	tail := " 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 123456 1000 10"
	tests := []struct {
		name      string
		in        string
		wantState byte
		wantStart uint64
		wantErr   bool
	}{
		{"plain", "42 (sleep) S" + tail, 'S', 123456, false},
		{"comm with spaces and parens", "42 (a) (b c) Z" + tail, 'Z', 123456, false},
		{"no paren", "42 sleep S" + tail, 0, 0, true},
		{"too short", "42 (sleep) S 1 2", 0, 0, true},
		{"bad start", "42 (sleep) S 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 x", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr || got.state != tt.wantState || got.start != tt.wantStart {
				t.Fatalf("parse = %+v, %v", got, err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Dir = "/x"
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"no dir", func(c *Config) { c.Dir = "" }, "dir"},
		{"no max log bytes", func(c *Config) { c.MaxLogBytes = 0 }, "max log bytes"},
		{"no check interval", func(c *Config) { c.LogCheckInterval = 0 }, "log check interval"},
		{"no poll interval", func(c *Config) { c.PollInterval = -1 }, "poll interval"},
		{"no clock", func(c *Config) { c.Clock = nil }, "clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
