package containerd

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
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/queue"
)

// Name is the driver's name for --runtime.
const Name = "containerd"

// killWait bounds how long Stop waits for the exit after SIGKILL.
const killWait = 10 * time.Second

// cleanupTimeout bounds the containerd calls that undo a failed Start.
const cleanupTimeout = 30 * time.Second

// rewaitBackoff is the first pause before waiting again on a task whose
// wait failed (containerd restarting); it doubles up to rewaitMax.
const (
	rewaitBackoff = 100 * time.Millisecond
	rewaitMax     = 5 * time.Second
)

// Driver runs container attempts as containerd tasks. Create it with New.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	client *client.Client
	net    *network
	lock   *os.File // flock on Dir/lock: one driver per Dir

	mu       sync.Mutex
	attempts map[runtime.ContainerID]*attempt
	pods     map[string]*podNet
	closed   bool

	// ctx carries the containerd namespace and is cancelled (cause
	// runtime.ErrClosed) by Close; stop is its Done.
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   <-chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	events *queue.Queue
}

// attempt is one container attempt known to the driver.
type attempt struct {
	cid string           // containerd's container id (and snapshot key)
	ctr client.Container // set before the attempt is published
	// task is the running task; nil once the exit is recorded or when
	// there was none at adoption.
	task     client.Task
	st       runtime.Status // guarded by Driver.mu
	starting bool           // reserved by Start, not yet started; guarded by Driver.mu
	removing bool           // Remove in progress; guarded by Driver.mu
	done     chan struct{}  // closed once the exit is recorded
	// logMu is held for writing by a rotation and for reading by log
	// readers, so a reader never sees a half-done copy-truncate.
	logMu sync.RWMutex
}

var (
	_ runtime.Driver     = (*Driver)(nil)
	_ runtime.PodNetwork = (*Driver)(nil)
)

// New connects to containerd, re-adopts the attempts and pod networks an
// earlier driver left (see the package doc), and starts watching. Zero
// fields of cfg take DefaultConfig's values.
func New(cfg Config) (*Driver, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, dir := range []string{filepath.Join(cfg.Dir, "pods"), filepath.Join(cfg.Dir, "fifo")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("containerd runtime: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("containerd runtime: %s is in use by another driver", cfg.Dir)
		}
		return nil, fmt.Errorf("containerd runtime: lock %s: %w", cfg.Dir, err)
	}
	d := &Driver{
		cfg:      cfg,
		log:      cfg.Logger.With("runtime", Name, "namespace", cfg.Namespace),
		lock:     lock,
		attempts: make(map[runtime.ContainerID]*attempt),
		pods:     make(map[string]*podNet),
	}
	fail := func(err error) (*Driver, error) {
		if d.client != nil {
			d.client.Close()
		}
		lock.Close()
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	if d.net, err = newNetwork(cfg); err != nil {
		return fail(err)
	}
	if d.client, err = client.New(cfg.Address, client.WithDefaultNamespace(cfg.Namespace), client.WithTimeout(cfg.ConnectTimeout)); err != nil {
		return fail(err)
	}
	d.ctx, d.cancel = context.WithCancelCause(namespaces.WithNamespace(context.Background(), cfg.Namespace))
	d.stop = d.ctx.Done()
	if err := d.ping(); err != nil {
		d.cancel(err)
		return fail(err)
	}
	watch, err := d.adopt()
	if err != nil {
		d.cancel(err)
		return fail(err)
	}
	d.events = queue.New(d.stop)
	d.wg.Add(2)
	go func() { defer d.wg.Done(); d.events.Run() }()
	go d.rotator()
	for _, a := range watch {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.watch(a, nil) }()
	}
	return d, nil
}

// ping fails unless containerd answers within ConnectTimeout.
func (d *Driver) ping() error {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.ConnectTimeout)
	defer cancel()
	ok, err := d.client.IsServing(ctx)
	if err == nil && !ok {
		err = errors.New("not serving")
	}
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", d.cfg.Address, err)
	}
	return nil
}

// Name returns "containerd".
func (d *Driver) Name() string { return Name }

// Events delivers the status of every exit observed after New returned.
func (d *Driver) Events() <-chan runtime.Status { return d.events.Out() }

// Close stops the driver's goroutines (log followers included, whose
// readers then fail with runtime.ErrClosed), disconnects from containerd
// and releases Dir for another driver. Containers keep running.
func (d *Driver) Close() error {
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		d.cancel(runtime.ErrClosed)
		d.wg.Wait() // the queue's Run closes Events
		d.client.Close()
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

func (d *Driver) closedErr() error {
	select {
	case <-d.stop:
		return runtime.ErrClosed
	default:
		return nil
	}
}

// nsctx adds the driver's containerd namespace to ctx.
func (d *Driver) nsctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, d.cfg.Namespace)
}

func statusAttrs(st runtime.Status) []any {
	return []any{
		"pod", st.Pod.Namespace + "/" + st.Pod.Name, "uid", st.Pod.UID,
		"container", st.ID.Name, "attempt", st.ID.Attempt, "pid", st.PID,
	}
}

// lookup returns the attempt and a copy of its status.
func (d *Driver) lookup(id runtime.ContainerID) (*attempt, runtime.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, runtime.Status{}, runtime.ErrClosed
	}
	a := d.attempts[id]
	if a == nil || a.starting {
		return nil, runtime.Status{}, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return a, a.st, nil
}

// Start pulls the image if needed, sets up the pod's network on its first
// container, creates the container and starts its task; see the package
// doc.
func (d *Driver) Start(ctx context.Context, pod runtime.Pod, c runtime.ContainerSpec, attemptNum int) (runtime.Status, error) {
	id := runtime.ContainerID{PodUID: pod.UID, Name: c.Name, Attempt: attemptNum}
	if err := checkID(id); err != nil {
		return runtime.Status{}, err
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
	a := &attempt{cid: containerdID(id), starting: true, done: make(chan struct{})}
	d.attempts[id] = a // reserves the id while the container is created
	d.mu.Unlock()

	st, exitc, err := d.create(d.nsctx(ctx), pod, c, id, a)
	d.mu.Lock()
	if err != nil {
		delete(d.attempts, id)
		d.mu.Unlock()
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, err)
	}
	a.st, a.starting = st, false
	d.mu.Unlock()
	d.log.Info("started container", append(statusAttrs(st), "image", c.Image, "id", a.cid)...)
	// If the driver closed meanwhile the task runs on: the next driver
	// re-adopts it.
	d.goOwned(func() { d.watch(a, exitc) })
	return st, nil
}

// create does Start's work. On error nothing of the attempt is left in
// containerd or on disk, nor the pod's network if this call made it and
// the pod has no other attempt.
func (d *Driver) create(ctx context.Context, pod runtime.Pod, c runtime.ContainerSpec, id runtime.ContainerID, a *attempt) (_ runtime.Status, _ <-chan client.ExitStatus, err error) {
	img, err := d.ensureImage(ctx, c.Image, c.ImagePullPolicy)
	if err != nil {
		return runtime.Status{}, nil, err
	}
	pn, err := d.podNet(pod.UID)
	if err != nil {
		return runtime.Status{}, nil, err
	}
	_, madeNet, err := d.ensureNetwork(ctx, pod, pn)
	if err != nil {
		return runtime.Status{}, nil, err
	}
	defer func() {
		if err != nil && madeNet {
			d.dropUnusedNetwork(ctx, pod.UID, id, pn)
		}
	}()

	// Held for reading until the task runs: RemovePod cannot take the
	// namespace away underneath.
	pn.mu.RLock()
	defer pn.mu.RUnlock()
	if pn.rec == nil {
		return runtime.Status{}, nil, fmt.Errorf("pod %s is being removed", pod.UID)
	}
	if err := d.writeResolvConf(pod.UID, c.ResolvConf); err != nil {
		return runtime.Status{}, nil, err
	}
	opts, err := d.specOpts(ctx, img, pod, c, pn.rec)
	if err != nil {
		return runtime.Status{}, nil, err
	}
	if err := os.MkdirAll(d.containerDir(id), 0o755); err != nil {
		return runtime.Status{}, nil, err
	}
	logPath := d.logPath(id)

	newContainer := func() (client.Container, error) {
		return d.client.NewContainer(ctx, a.cid,
			client.WithImage(img),
			client.WithSnapshotter(d.cfg.Snapshotter),
			client.WithNewSnapshot(a.cid, img),
			client.WithNewSpec(opts...),
			client.WithContainerLabels(attemptLabels(pod, c, id)),
		)
	}
	ctr, err := newContainer()
	if errdefs.IsAlreadyExists(err) {
		// A leftover of this very attempt whose cleanup failed earlier:
		// the driver does not know it (the id was free), so it goes.
		d.log.Warn("deleting a leftover container of a failed start", "id", a.cid)
		d.deleteContainer(ctx, a.cid)
		ctr, err = newContainer()
	}
	if err != nil {
		return runtime.Status{}, nil, fmt.Errorf("create container: %w", err)
	}
	a.ctr = ctr
	var task client.Task
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if task != nil {
				if _, derr := task.Delete(cctx, client.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
					d.log.Warn("cannot delete the task of a failed start", "id", a.cid, "err", derr)
				}
			}
			if derr := ctr.Delete(cctx, client.WithSnapshotCleanup); derr != nil && !errdefs.IsNotFound(derr) {
				d.log.Warn("cannot delete the container of a failed start", "id", a.cid, "err", derr)
			}
			_ = os.Remove(logPath)
		}
	}()
	task, err = ctr.NewTask(ctx, cio.LogFile(logPath))
	if err != nil {
		return runtime.Status{}, nil, fmt.Errorf("create task: %w", err)
	}
	// Wait before Start, so a fast exit is not missed; on the driver's
	// context, as it outlives this call.
	exitc, err := task.Wait(d.ctx)
	if err != nil {
		return runtime.Status{}, nil, fmt.Errorf("wait on task: %w", err)
	}
	startedAt := d.cfg.Clock()
	if err := task.Start(ctx); err != nil {
		return runtime.Status{}, nil, fmt.Errorf("start task: %w", err)
	}
	a.task = task
	if _, err := ctr.SetLabels(ctx, map[string]string{labelStartedAt: startedAt.UTC().Format(time.RFC3339Nano)}); err != nil {
		// Only the start time after an agent restart suffers (it falls
		// back to the container's creation).
		d.log.Warn("cannot record the start time", "id", a.cid, "err", err)
	}
	st := runtime.Status{ID: id, Pod: pod, Running: true, PID: int(task.Pid()), StartedAt: startedAt}
	return st, exitc, nil
}

// dropUnusedNetwork tears down a network that a failed Start made, unless
// another attempt of the pod exists or is being started.
func (d *Driver) dropUnusedNetwork(ctx context.Context, uid string, failed runtime.ContainerID, pn *podNet) {
	d.mu.Lock()
	used := false
	for id := range d.attempts {
		if id.PodUID == uid && id != failed {
			used = true
		}
	}
	d.mu.Unlock()
	if used {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	pn.mu.Lock()
	defer pn.mu.Unlock()
	if err := d.teardownNetwork(cctx, pn); err != nil {
		d.log.Warn("cannot tear down the network of a failed start", "uid", uid, "err", err)
	}
}

// writeResolvConf writes the pod's resolv.conf: the spec's, or a copy of
// the node's when the spec has none.
func (d *Driver) writeResolvConf(uid string, rc []byte) error {
	if rc == nil {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		rc = b
	}
	return writeAtomic(d.resolvConfPath(uid), rc, 0o644)
}

// Stop signals every process of the attempt with SIGTERM, waits up to
// grace (or until ctx ends), then sends SIGKILL and waits for the exit.
func (d *Driver) Stop(ctx context.Context, id runtime.ContainerID, grace time.Duration) (runtime.Status, error) {
	a, st, err := d.lookup(id)
	if err != nil {
		return runtime.Status{}, err
	}
	if !st.Running {
		return st, nil
	}
	d.log.Info("stopping container", append(statusAttrs(st), "grace", grace)...)
	d.signal(a, syscall.SIGTERM)
	if grace > 0 && !d.waitExit(ctx, a, grace) {
		if err := d.closedErr(); err != nil {
			return st, err
		}
	}
	if !isDone(a.done) {
		d.log.Info("killing container after grace period", statusAttrs(st)...)
		d.signal(a, syscall.SIGKILL)
		if !d.waitExit(context.Background(), a, killWait) {
			if err := d.closedErr(); err != nil {
				return st, err
			}
			return st, fmt.Errorf("stop container %s: still running %s after SIGKILL", id, killWait)
		}
	}
	return d.Status(id)
}

// signal sends sig to every process of the attempt's task.
func (d *Driver) signal(a *attempt, sig syscall.Signal) {
	if a.task == nil {
		return
	}
	err := a.task.Kill(d.ctx, sig, client.WithKillAll)
	if err != nil && !errdefs.IsNotFound(err) && !isDone(a.done) && d.closedErr() == nil {
		d.log.Warn("cannot signal container", "id", a.cid, "signal", sig, "err", err)
	}
}

// waitExit waits until a has exited (true), or timeout, ctx or Close.
func (d *Driver) waitExit(ctx context.Context, a *attempt, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-a.done:
		return true
	case <-timer.C:
	case <-ctx.Done():
	case <-d.stop:
	}
	return false
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
	_, st, err := d.lookup(id)
	return st, err
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
			out = append(out, a.st)
		}
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(x, y runtime.Status) int {
		return cmp.Or(cmp.Compare(x.ID.PodUID, y.ID.PodUID), cmp.Compare(x.ID.Name, y.ID.Name),
			cmp.Compare(x.ID.Attempt, y.ID.Attempt))
	})
	return out, nil
}

// Remove deletes an exited attempt's container, snapshot and logs.
func (d *Driver) Remove(id runtime.ContainerID) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return runtime.ErrClosed
	}
	a := d.attempts[id]
	switch {
	case a == nil || a.starting || a.removing:
		d.mu.Unlock()
		return fmt.Errorf("remove container %s: %w", id, runtime.ErrNotFound)
	case a.st.Running:
		d.mu.Unlock()
		return fmt.Errorf("remove container %s: %w", id, runtime.ErrRunning)
	}
	a.removing = true
	d.mu.Unlock()
	err := d.removeAttempt(id, a)
	d.mu.Lock()
	if err != nil {
		a.removing = false
	} else {
		delete(d.attempts, id)
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// removeAttempt deletes the attempt's container (with its snapshot) and its
// log files.
func (d *Driver) removeAttempt(id runtime.ContainerID, a *attempt) error {
	if err := d.deleteContainer(d.ctx, a.cid); err != nil {
		return err
	}
	a.logMu.Lock() // not in the middle of a rotation
	defer a.logMu.Unlock()
	var errs []error
	for _, p := range []string{d.logPath(id), d.logPath(id) + ".1"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteContainer deletes a container, its task if any and its snapshot;
// one that does not exist is not an error.
func (d *Driver) deleteContainer(ctx context.Context, cid string) error {
	ctr, err := d.client.LoadContainer(ctx, cid)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if task, err := ctr.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task: %w", err)
		}
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container: %w", err)
	}
	return nil
}

// RemovePod stops the pod's running attempts in parallel, deletes all of
// them, detaches and removes the pod's network namespace and deletes the
// pod's directory. It must not race with a Start of the same pod.
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
	pn := d.pods[podUID]
	d.mu.Unlock()

	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	addErr := func(err error) {
		emu.Lock()
		errs = append(errs, err)
		emu.Unlock()
	}
	for _, id := range ids {
		wg.Go(func() {
			if _, err := d.Stop(ctx, id, grace); err != nil {
				addErr(err)
				return
			}
			a, _, err := d.lookup(id)
			if err != nil {
				return // removed meanwhile
			}
			if err := d.removeAttempt(id, a); err != nil {
				addErr(fmt.Errorf("container %s: %w", id, err))
				return
			}
			d.mu.Lock()
			delete(d.attempts, id)
			d.mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	if pn != nil {
		pn.mu.Lock()
		err := d.teardownNetwork(d.nsctx(ctx), pn)
		pn.mu.Unlock()
		if err != nil {
			return fmt.Errorf("remove pod %s: %w", podUID, err)
		}
		d.mu.Lock()
		if d.pods[podUID] == pn {
			delete(d.pods, podUID)
		}
		d.mu.Unlock()
	} else if rec, err := readPodRecord(d.podRecordPath(podUID)); err == nil {
		// A network the driver did not adopt (its namespace was gone):
		// release what CNI still holds for it.
		_ = d.net.del(d.nsctx(ctx), rec)
	}
	if err := removeNetNS(d.netnsPath(podUID)); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	if err := os.RemoveAll(d.podDir(podUID)); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	d.log.Info("removed pod", "uid", podUID, "attempts", len(ids))
	return nil
}
