package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/atomicfile"
	"github.com/shoal-dev/shoal/agent/runtime/internal/attempts"
	"github.com/shoal-dev/shoal/agent/runtime/internal/layout"
	"github.com/shoal-dev/shoal/agent/runtime/internal/lifecycle"
	"github.com/shoal-dev/shoal/agent/runtime/internal/logfile"
)

// Name is the driver's name for --runtime.
const Name = "process"

// ResolvConfEnv names, in the environment of a container whose spec has a
// ResolvConf, the absolute path of the pod's resolv.conf: the process
// runtime cannot mount it at /etc/resolv.conf.
const ResolvConfEnv = "SHOAL_RESOLV_CONF"

// stopPoll is how often Stop looks for the exit of a re-adopted process,
// which sends no SIGCHLD.
const stopPoll = 50 * time.Millisecond

// defaultPath is given to containers when neither their Env nor the agent
// has a PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Driver runs container attempts as host processes. Create it with New.
type Driver struct {
	cfg   Config
	log   *slog.Logger
	files layout.Dir

	lock *os.File // flock on Dir/lock: one driver per Dir

	// life is cancelled (cause runtime.ErrClosed) by Close.
	life     *lifecycle.Life
	attempts *attempts.Table[record]
	stopper  attempts.Stopper[record]

	kick chan struct{} // asks the monitor to look for exits now
}

// attempt is one container attempt known to the driver. Its Data is the
// record as Start wrote it or New found it, and is not changed: an exit
// observed later goes into the status (and the record on disk).
type attempt = attempts.Attempt[record]

var _ runtime.Driver = (*Driver)(nil)

// New scans cfg.Dir for attempts left by an earlier driver, re-adopts the
// live ones, records the dead ones as exited, and starts watching. Zero
// fields of cfg take DefaultConfig's values.
func New(cfg Config) (*Driver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	files := layout.Dir(cfg.Dir)
	// Two drivers on one Dir would both reap and signal the same
	// processes.
	lock, err := files.Claim()
	if err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	d := &Driver{
		lock:  lock,
		cfg:   cfg,
		log:   cfg.Logger.With("runtime", Name),
		files: files,
		kick:  make(chan struct{}, 1),
	}
	recs, err := d.loadRecords()
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	d.life = lifecycle.New(context.Background())
	d.attempts = attempts.NewTable[record](d.life, d.log, files.Log)
	d.stopper = attempts.Stopper[record]{Signal: d.signal, Poll: d.poke, PollInterval: stopPoll, PIDInError: true}
	for _, r := range recs {
		d.attempts.Adopt(r.status(), *r)
	}
	// Exits that happened while no driver watched are recorded now, before
	// anyone can List, and are not sent on Events.
	d.reap(false)
	running := d.attempts.Running()
	for _, a := range running {
		d.log.Info("re-adopted container", attempts.Attrs(a.Data.status())...)
	}
	if len(recs) > 0 {
		d.log.Info("scanned runtime state", "attempts", len(recs), "running", len(running))
	}
	d.life.Go(d.monitor)
	d.life.Go(func() {
		logfile.Rotator(d.life.Done(), cfg.LogCheckInterval, cfg.MaxLogBytes, d.attempts.RunningLogs, d.log)
	})
	return d, nil
}

// Name returns "process".
func (d *Driver) Name() string { return Name }

// Events delivers the status of every exit observed after New returned.
func (d *Driver) Events() <-chan runtime.Status { return d.life.Events() }

// Close stops the driver's goroutines (log followers included, whose
// readers then fail with runtime.ErrClosed) and releases Dir for another
// driver. Containers keep running.
func (d *Driver) Close() error {
	d.life.Close(func() { d.lock.Close() })
	return nil
}

// Start starts the attempt as a child process; see the package doc for
// argv, env, working dir and files.
func (d *Driver) Start(ctx context.Context, pod runtime.Pod, c runtime.ContainerSpec, attemptNum int) (runtime.Status, error) {
	id := runtime.ContainerID{PodUID: pod.UID, Name: c.Name, Attempt: attemptNum}
	if err := layout.CheckID(id); err != nil {
		return runtime.Status{}, err
	}
	if len(c.Command) == 0 {
		return runtime.Status{}, fmt.Errorf("container %s: command is required on the process runtime", c.Name)
	}
	if err := ctx.Err(); err != nil {
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, err)
	}
	a, err := d.attempts.Reserve(id, record{}) // while the process starts
	if err != nil {
		return runtime.Status{}, err
	}
	rec, err := d.spawn(pod, c, id)
	if err != nil {
		d.attempts.Abort(id)
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, err)
	}
	a.Data = *rec
	d.attempts.Publish(a, rec.status())
	d.log.Info("started container", attempts.Attrs(rec.status())...)
	d.poke() // it may already have exited
	return rec.status(), nil
}

// spawn starts the process and writes its record. On error nothing is left
// running and no record exists.
func (d *Driver) spawn(pod runtime.Pod, c runtime.ContainerSpec, id runtime.ContainerID) (*record, error) {
	ctrDir := d.files.Container(id)
	if err := os.MkdirAll(ctrDir, 0o755); err != nil {
		return nil, err
	}
	workDir := ctrDir
	switch {
	case c.WorkingDir == "":
	case filepath.IsAbs(c.WorkingDir):
		workDir = filepath.Clean(c.WorkingDir)
	case filepath.IsLocal(c.WorkingDir):
		workDir = filepath.Join(d.files.Pod(id.PodUID), c.WorkingDir)
		if err := os.MkdirAll(workDir, 0o755); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("workingDir %q: a relative path must stay inside the pod's directory", c.WorkingDir)
	}
	env := slices.Clone(c.Env)
	if c.ResolvConf != nil {
		// No mount namespace to put it at /etc/resolv.conf: the container
		// is told where it is.
		rc, err := filepath.Abs(d.files.ResolvConf(id.PodUID))
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(rc, c.ResolvConf, 0o644); err != nil {
			return nil, err
		}
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, ResolvConfEnv+"=") })
		env = append(env, ResolvConfEnv+"="+rc)
	}
	path, ok := pathOf(env)
	if !ok {
		path = cmp.Or(os.Getenv("PATH"), defaultPath)
		env = append(env, "PATH="+path)
	}
	bin, err := lookPath(c.Command[0], path, workDir)
	if err != nil {
		return nil, err
	}
	argv := append(slices.Clone(c.Command), c.Args...)

	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	logPath := d.files.Log(id)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	startedAt := d.cfg.Clock()
	pid, err := syscall.ForkExec(bin, argv, &syscall.ProcAttr{
		Dir:   workDir,
		Env:   env,
		Files: []uintptr{devNull.Fd(), logFile.Fd(), logFile.Fd()},
		// No Pdeathsig: containers outlive the agent and are re-adopted.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	logFile.Close() // the child has its own copy
	if err != nil {
		_ = os.Remove(logPath)
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	// The child is not reaped before the monitor sees the record, so its
	// /proc entry exists even if it already exited.
	st, err := readProcStat(pid)
	if err != nil {
		d.log.Warn("cannot read process start time; pid reuse will go unnoticed", "pid", pid, "err", err)
	}
	rec := &record{
		Pod: pod, Container: c.Name, Attempt: id.Attempt, Image: c.Image,
		PID: pid, ProcStart: st.start, StartedAt: startedAt,
		Env: env, WorkDir: workDir,
	}
	if err := d.writeRecord(rec); err != nil {
		// Without a record a restarted agent could not find the process:
		// do not leave it running.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
		_ = os.Remove(logPath)
		return nil, err
	}
	return rec, nil
}

// Stop signals the attempt's process group with SIGTERM, waits up to grace
// (or until ctx ends), then sends SIGKILL and waits for the exit.
func (d *Driver) Stop(ctx context.Context, id runtime.ContainerID, grace time.Duration) (runtime.Status, error) {
	return d.attempts.Stop(ctx, id, grace, d.stopper)
}

// signal sends sig to the attempt's process group, if the process is still
// the one we started.
func (d *Driver) signal(a *attempt, sig syscall.Signal) {
	r := &a.Data
	if !alive(r.PID, r.ProcStart) {
		d.poke()
		return
	}
	if err := syscall.Kill(-r.PID, sig); errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(r.PID, sig)
	}
}

// Status returns the attempt's status.
func (d *Driver) Status(id runtime.ContainerID) (runtime.Status, error) {
	return d.attempts.Status(id)
}

// List returns every known attempt, ordered by pod uid, name, attempt.
func (d *Driver) List() ([]runtime.Status, error) { return d.attempts.List() }

// Remove forgets an exited attempt and deletes its log and record.
func (d *Driver) Remove(id runtime.ContainerID) error {
	a, err := d.attempts.Take(id)
	if err != nil {
		return err
	}
	if err := a.Log.Remove(d.statePath(id)); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// RemovePod stops the pod's running attempts in parallel, forgets all of
// them and deletes the pod's directory (working dirs included).
func (d *Driver) RemovePod(ctx context.Context, podUID string, grace time.Duration) error {
	ids, err := d.attempts.PodAttempts(podUID)
	if err != nil {
		return err
	}
	err = attempts.ForEach(ids, func(id runtime.ContainerID) error {
		_, err := d.Stop(ctx, id, grace)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	for _, a := range d.attempts.Drop(ids...) { // no rotation writes into the dir while it goes
		a.Log.Lock()
		defer a.Log.Unlock()
	}
	if err := os.RemoveAll(d.files.Pod(podUID)); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	d.log.Info("removed pod", "uid", podUID, "attempts", len(ids))
	return nil
}
