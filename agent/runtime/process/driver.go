package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/queue"
)

// Name is the driver's name for --runtime.
const Name = "process"

// ResolvConfEnv names, in the environment of a container whose spec has a
// ResolvConf, the absolute path of the pod's resolv.conf: the process
// runtime cannot mount it at /etc/resolv.conf.
const ResolvConfEnv = "SHOAL_RESOLV_CONF"

// killWait bounds how long Stop waits for the exit after SIGKILL.
const killWait = 10 * time.Second

// stopPoll is how often Stop looks for the exit of a re-adopted process,
// which sends no SIGCHLD.
const stopPoll = 50 * time.Millisecond

// defaultPath is given to containers when neither their Env nor the agent
// has a PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Driver runs container attempts as host processes. Create it with New.
type Driver struct {
	cfg Config
	log *slog.Logger

	lock *os.File // flock on Dir/lock: one driver per Dir

	mu       sync.Mutex
	attempts map[runtime.ContainerID]*attempt
	closed   bool

	kick chan struct{} // asks the monitor to look for exits now
	// ctx is cancelled (cause runtime.ErrClosed) by Close; stop is its Done.
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   <-chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	events *queue.Queue
}

// attempt is one container attempt known to the driver.
type attempt struct {
	rec      record        // guarded by Driver.mu
	starting bool          // reserved by Start, not yet started; guarded by Driver.mu
	done     chan struct{} // closed once the exit is recorded
	// logMu is held for writing by a rotation and for reading by log
	// readers, so a reader never sees a half-done copy-truncate.
	logMu sync.RWMutex
}

var _ runtime.Driver = (*Driver)(nil)

// New scans cfg.Dir for attempts left by an earlier driver, re-adopts the
// live ones, records the dead ones as exited, and starts watching. Zero
// fields of cfg take DefaultConfig's values.
func New(cfg Config) (*Driver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "pods"), 0o755); err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	// Two drivers on one Dir would both reap and signal the same
	// processes. The lock goes with the process (and its fd is close-on-
	// exec, so containers do not inherit it).
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("process runtime: %s is in use by another driver", cfg.Dir)
		}
		return nil, fmt.Errorf("process runtime: lock %s: %w", cfg.Dir, err)
	}
	d := &Driver{
		lock:     lock,
		cfg:      cfg,
		log:      cfg.Logger.With("runtime", Name),
		attempts: make(map[runtime.ContainerID]*attempt),
		kick:     make(chan struct{}, 1),
	}
	d.ctx, d.cancel = context.WithCancelCause(context.Background())
	d.stop = d.ctx.Done()
	recs, err := d.loadRecords()
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	for _, r := range recs {
		a := &attempt{rec: *r, done: make(chan struct{})}
		if r.Exited {
			close(a.done)
		}
		d.attempts[r.id()] = a
	}
	// Exits that happened while no driver watched are recorded now, before
	// anyone can List, and are not sent on Events.
	d.reap(false)
	running := 0
	for _, a := range d.attempts {
		if !a.rec.Exited {
			running++
			d.log.Info("re-adopted container", attemptAttrs(&a.rec)...)
		}
	}
	if len(recs) > 0 {
		d.log.Info("scanned runtime state", "attempts", len(recs), "running", running)
	}
	d.events = queue.New(d.stop)
	d.wg.Add(3)
	go func() { defer d.wg.Done(); d.events.Run() }()
	go d.monitor()
	go d.rotator()
	return d, nil
}

// Name returns "process".
func (d *Driver) Name() string { return Name }

// Events delivers the status of every exit observed after New returned.
func (d *Driver) Events() <-chan runtime.Status { return d.events.Out() }

// Close stops the driver's goroutines (log followers included, whose
// readers then fail with runtime.ErrClosed) and releases Dir for another
// driver. Containers keep running.
func (d *Driver) Close() error {
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		d.cancel(runtime.ErrClosed)
		d.wg.Wait() // the queue's Run closes Events
		d.lock.Close()
	})
	return nil
}

// goOwned runs f on a goroutine that Close waits for; false if closed.
func (d *Driver) goOwned(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
	return true
}

func attemptAttrs(r *record) []any {
	return []any{
		"pod", r.Pod.Namespace + "/" + r.Pod.Name, "uid", r.Pod.UID,
		"container", r.Container, "attempt", r.Attempt, "pid", r.PID,
	}
}

func checkID(id runtime.ContainerID) error {
	switch {
	case !validName(id.PodUID):
		return fmt.Errorf("container %s: pod uid %q is not a valid name", id, id.PodUID)
	case !validName(id.Name):
		return fmt.Errorf("container %s: name %q is not a valid name", id, id.Name)
	case id.Attempt < 0:
		return fmt.Errorf("container %s: attempt %d is negative", id, id.Attempt)
	}
	return nil
}

// lookup returns the attempt and a copy of its record.
func (d *Driver) lookup(id runtime.ContainerID) (*attempt, record, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, record{}, runtime.ErrClosed
	}
	a := d.attempts[id]
	if a == nil || a.starting {
		return nil, record{}, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return a, a.rec, nil
}

// Start starts the attempt as a child process; see the package doc for
// argv, env, working dir and files.
func (d *Driver) Start(ctx context.Context, pod runtime.Pod, c runtime.ContainerSpec, attemptNum int) (runtime.Status, error) {
	id := runtime.ContainerID{PodUID: pod.UID, Name: c.Name, Attempt: attemptNum}
	if err := checkID(id); err != nil {
		return runtime.Status{}, err
	}
	if len(c.Command) == 0 {
		return runtime.Status{}, fmt.Errorf("container %s: command is required on the process runtime", c.Name)
	}
	if err := ctx.Err(); err != nil {
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, err)
	}
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return runtime.Status{}, runtime.ErrClosed
	case d.attempts[id] != nil:
		d.mu.Unlock()
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, runtime.ErrExists)
	}
	a := &attempt{starting: true, done: make(chan struct{})}
	d.attempts[id] = a // reserves the id while the process starts
	d.mu.Unlock()

	rec, err := d.spawn(pod, c, id)
	d.mu.Lock()
	if err != nil {
		delete(d.attempts, id)
		d.mu.Unlock()
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, err)
	}
	a.rec, a.starting = *rec, false
	d.mu.Unlock()
	d.log.Info("started container", attemptAttrs(rec)...)
	d.poke() // it may already have exited
	return rec.status(), nil
}

// spawn starts the process and writes its record. On error nothing is left
// running and no record exists.
func (d *Driver) spawn(pod runtime.Pod, c runtime.ContainerSpec, id runtime.ContainerID) (*record, error) {
	ctrDir := d.containerDir(id)
	if err := os.MkdirAll(ctrDir, 0o755); err != nil {
		return nil, err
	}
	workDir := ctrDir
	switch {
	case c.WorkingDir == "":
	case filepath.IsAbs(c.WorkingDir):
		workDir = filepath.Clean(c.WorkingDir)
	case filepath.IsLocal(c.WorkingDir):
		workDir = filepath.Join(d.podDir(id.PodUID), c.WorkingDir)
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
		rc, err := filepath.Abs(d.resolvConfPath(id.PodUID))
		if err != nil {
			return nil, err
		}
		if err := writeAtomic(rc, c.ResolvConf, 0o644); err != nil {
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
	logPath := d.logPath(id)
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
	a, rec, err := d.lookup(id)
	if err != nil {
		return runtime.Status{}, err
	}
	if rec.Exited {
		return rec.status(), nil
	}
	d.log.Info("stopping container", append(attemptAttrs(&rec), "grace", grace)...)
	d.signal(&rec, syscall.SIGTERM)
	if grace > 0 && !d.waitExit(ctx, a, grace) {
		if err := d.closedErr(); err != nil {
			return rec.status(), err
		}
	}
	if !isDone(a.done) {
		d.log.Info("killing container after grace period", attemptAttrs(&rec)...)
		d.signal(&rec, syscall.SIGKILL)
		if !d.waitExit(context.Background(), a, killWait) {
			if err := d.closedErr(); err != nil {
				return rec.status(), err
			}
			return rec.status(), fmt.Errorf("stop container %s: pid %d still running %s after SIGKILL", id, rec.PID, killWait)
		}
	}
	return d.Status(id)
}

func (d *Driver) closedErr() error {
	select {
	case <-d.stop:
		return runtime.ErrClosed
	default:
		return nil
	}
}

// signal sends sig to the attempt's process group, if the process is still
// the one we started.
func (d *Driver) signal(r *record, sig syscall.Signal) {
	if !alive(r.PID, r.ProcStart) {
		d.poke()
		return
	}
	if err := syscall.Kill(-r.PID, sig); errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(r.PID, sig)
	}
}

// waitExit waits until a has exited (true), or timeout, ctx or Close.
func (d *Driver) waitExit(ctx context.Context, a *attempt, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(stopPoll)
	defer tick.Stop()
	for {
		select {
		case <-a.done:
			return true
		case <-tick.C:
			d.poke()
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		case <-d.stop:
			return false
		}
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Status returns the attempt's status.
func (d *Driver) Status(id runtime.ContainerID) (runtime.Status, error) {
	_, rec, err := d.lookup(id)
	if err != nil {
		return runtime.Status{}, err
	}
	return rec.status(), nil
}

// List returns every known attempt, ordered by pod uid, name, attempt.
func (d *Driver) List() ([]runtime.Status, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, runtime.ErrClosed
	}
	out := make([]runtime.Status, 0, len(d.attempts))
	for _, a := range d.attempts {
		if !a.starting {
			out = append(out, a.rec.status())
		}
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(x, y runtime.Status) int {
		return cmp.Or(cmp.Compare(x.ID.PodUID, y.ID.PodUID), cmp.Compare(x.ID.Name, y.ID.Name),
			cmp.Compare(x.ID.Attempt, y.ID.Attempt))
	})
	return out, nil
}

// Remove forgets an exited attempt and deletes its log and record.
func (d *Driver) Remove(id runtime.ContainerID) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return runtime.ErrClosed
	}
	a := d.attempts[id]
	switch {
	case a == nil || a.starting:
		d.mu.Unlock()
		return fmt.Errorf("remove container %s: %w", id, runtime.ErrNotFound)
	case !a.rec.Exited:
		d.mu.Unlock()
		return fmt.Errorf("remove container %s: %w", id, runtime.ErrRunning)
	}
	delete(d.attempts, id)
	d.mu.Unlock()
	a.logMu.Lock() // not in the middle of a rotation
	defer a.logMu.Unlock()
	var errs []error
	for _, p := range []string{d.logPath(id), d.logPath(id) + ".1", d.statePath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// RemovePod stops the pod's running attempts in parallel, forgets all of
// them and deletes the pod's directory (working dirs included).
func (d *Driver) RemovePod(ctx context.Context, podUID string, grace time.Duration) error {
	if !validName(podUID) {
		return fmt.Errorf("remove pod %q: not a valid pod uid", podUID)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return runtime.ErrClosed
	}
	var ids []runtime.ContainerID
	for id, a := range d.attempts {
		if id.PodUID == podUID && !a.starting {
			ids = append(ids, id)
		}
	}
	d.mu.Unlock()

	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	for _, id := range ids {
		wg.Go(func() {
			if _, err := d.Stop(ctx, id, grace); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	d.mu.Lock()
	var gone []*attempt
	for _, id := range ids {
		if a := d.attempts[id]; a != nil {
			gone = append(gone, a)
			delete(d.attempts, id)
		}
	}
	d.mu.Unlock()
	for _, a := range gone { // no rotation writes into the dir while it goes
		a.logMu.Lock()
		defer a.logMu.Unlock()
	}
	if err := os.RemoveAll(d.podDir(podUID)); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	d.log.Info("removed pod", "uid", podUID, "attempts", len(ids))
	return nil
}
