package containerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/atomicfile"
	"github.com/shoal-dev/shoal/agent/runtime/internal/attempts"
	"github.com/shoal-dev/shoal/agent/runtime/internal/layout"
	"github.com/shoal-dev/shoal/agent/runtime/internal/lifecycle"
	"github.com/shoal-dev/shoal/agent/runtime/internal/logfile"
)

// Name is the driver's name for --runtime.
const Name = "containerd"

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
	files  layout.Dir
	client *client.Client
	lock   *os.File // flock on Dir/lock: one driver per Dir

	// netMu guards net, which is nil until the node has a pod CIDR.
	netMu sync.RWMutex
	net   *network

	// life's context carries the containerd namespace and is cancelled
	// (cause runtime.ErrClosed) by Close; ctx and stop are its.
	life     *lifecycle.Life
	ctx      context.Context
	stop     <-chan struct{}
	attempts *attempts.Table[handle]
	stopper  attempts.Stopper[handle]

	mu   sync.Mutex
	pods map[string]*podNet // guarded by mu
}

// attempt is one container attempt known to the driver.
type attempt = attempts.Attempt[handle]

// handle is what the driver holds of an attempt in containerd, set before
// the attempt is published and not changed afterwards.
type handle struct {
	cid string           // containerd's container id (and snapshot key)
	ctr client.Container // the container
	// task is the attempt's task; nil when there was none at adoption.
	task client.Task
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
	files := layout.Dir(cfg.Dir)
	lock, err := files.Claim(filepath.Join(cfg.Dir, "fifo"))
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	d := &Driver{
		cfg:   cfg,
		log:   cfg.Logger.With("runtime", Name, "namespace", cfg.Namespace),
		files: files,
		lock:  lock,
		pods:  make(map[string]*podNet),
	}
	d.life = lifecycle.New(namespaces.WithNamespace(context.Background(), cfg.Namespace))
	d.ctx, d.stop = d.life.Context(), d.life.Done()
	d.attempts = attempts.NewTable[handle](d.life, d.log, d.files.Log)
	d.stopper = attempts.Stopper[handle]{Signal: d.signal}
	fail := func(err error) (*Driver, error) {
		d.life.Close(nil)
		if d.client != nil {
			d.client.Close()
		}
		lock.Close()
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	if err := d.initNetwork(); err != nil {
		return fail(err)
	}
	if d.client, err = client.New(cfg.Address, client.WithDefaultNamespace(cfg.Namespace), client.WithTimeout(cfg.ConnectTimeout)); err != nil {
		return fail(err)
	}
	if err := d.ping(); err != nil {
		return fail(err)
	}
	watch, err := d.adopt()
	if err != nil {
		return fail(err)
	}
	d.life.Go(func() {
		logfile.Rotator(d.stop, cfg.LogCheckInterval, cfg.MaxLogBytes, d.attempts.RunningLogs, d.log)
	})
	for _, a := range watch {
		d.life.Go(func() { d.watch(a, nil) })
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
func (d *Driver) Events() <-chan runtime.Status { return d.life.Events() }

// Close stops the driver's goroutines (log followers included, whose
// readers then fail with runtime.ErrClosed), disconnects from containerd
// and releases Dir for another driver. Containers keep running.
func (d *Driver) Close() error {
	d.life.Close(func() {
		d.client.Close()
		d.lock.Close()
	})
	return nil
}

// nsctx adds the driver's containerd namespace to ctx.
func (d *Driver) nsctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, d.cfg.Namespace)
}

// Start pulls the image if needed, sets up the pod's network on its first
// container, creates the container and starts its task; see the package
// doc.
func (d *Driver) Start(ctx context.Context, pod runtime.Pod, c runtime.ContainerSpec, attemptNum int) (runtime.Status, error) {
	id := runtime.ContainerID{PodUID: pod.UID, Name: c.Name, Attempt: attemptNum}
	if err := layout.CheckID(id); err != nil {
		return runtime.Status{}, err
	}
	if err := ctx.Err(); err != nil {
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, err)
	}
	// The id stays reserved while the container is created.
	a, err := d.attempts.Reserve(id, handle{cid: containerdID(id)})
	if err != nil {
		return runtime.Status{}, err
	}
	st, exitc, err := d.create(d.nsctx(ctx), pod, c, id, a)
	if err != nil {
		d.attempts.Abort(id)
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, err)
	}
	d.attempts.Publish(a, st)
	d.log.Info("started container", append(attempts.Attrs(st), "image", c.Image, "id", a.Data.cid)...)
	// If the driver closed meanwhile the task runs on: the next driver
	// re-adopts it.
	d.life.Go(func() { d.watch(a, exitc) })
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
	if err := os.MkdirAll(d.files.Container(id), 0o755); err != nil {
		return runtime.Status{}, nil, err
	}
	logPath := d.files.Log(id)

	newContainer := func() (client.Container, error) {
		return d.client.NewContainer(ctx, a.Data.cid,
			client.WithImage(img),
			client.WithSnapshotter(d.cfg.Snapshotter),
			client.WithNewSnapshot(a.Data.cid, img),
			client.WithNewSpec(opts...),
			client.WithContainerLabels(attemptLabels(pod, c, id)),
		)
	}
	ctr, err := newContainer()
	if errdefs.IsAlreadyExists(err) {
		// A leftover of this very attempt whose cleanup failed earlier:
		// the driver does not know it (the id was free), so it goes.
		d.log.Warn("deleting a leftover container of a failed start", "id", a.Data.cid)
		d.deleteContainer(ctx, a.Data.cid)
		ctr, err = newContainer()
	}
	if err != nil {
		return runtime.Status{}, nil, fmt.Errorf("create container: %w", err)
	}
	a.Data.ctr = ctr
	var task client.Task
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if task != nil {
				if _, derr := task.Delete(cctx, client.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
					d.log.Warn("cannot delete the task of a failed start", "id", a.Data.cid, "err", derr)
				}
			}
			if derr := ctr.Delete(cctx, client.WithSnapshotCleanup); derr != nil && !errdefs.IsNotFound(derr) {
				d.log.Warn("cannot delete the container of a failed start", "id", a.Data.cid, "err", derr)
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
	a.Data.task = task
	if _, err := ctr.SetLabels(ctx, map[string]string{labelStartedAt: startedAt.UTC().Format(time.RFC3339Nano)}); err != nil {
		// Only the start time after an agent restart suffers (it falls
		// back to the container's creation).
		d.log.Warn("cannot record the start time", "id", a.Data.cid, "err", err)
	}
	st := runtime.Status{ID: id, Pod: pod, Running: true, PID: int(task.Pid()), StartedAt: startedAt}
	return st, exitc, nil
}

// dropUnusedNetwork tears down a network that a failed Start made, unless
// another attempt of the pod exists or is being started.
func (d *Driver) dropUnusedNetwork(ctx context.Context, uid string, failed runtime.ContainerID, pn *podNet) {
	if d.attempts.PodInUse(uid, failed) {
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
	return atomicfile.Write(d.files.ResolvConf(uid), rc, 0o644)
}

// Stop signals every process of the attempt with SIGTERM, waits up to
// grace (or until ctx ends), then sends SIGKILL and waits for the exit.
func (d *Driver) Stop(ctx context.Context, id runtime.ContainerID, grace time.Duration) (runtime.Status, error) {
	return d.attempts.Stop(ctx, id, grace, d.stopper)
}

// signal sends sig to every process of the attempt's task.
func (d *Driver) signal(a *attempt, sig syscall.Signal) {
	if a.Data.task == nil {
		return
	}
	err := a.Data.task.Kill(d.ctx, sig, client.WithKillAll)
	if err != nil && !errdefs.IsNotFound(err) && !a.Exited() && d.life.Closed() == nil {
		d.log.Warn("cannot signal container", "id", a.Data.cid, "signal", sig, "err", err)
	}
}

// Status returns the attempt's status.
func (d *Driver) Status(id runtime.ContainerID) (runtime.Status, error) {
	return d.attempts.Status(id)
}

// List returns every known attempt, ordered by pod uid, name, attempt.
func (d *Driver) List() ([]runtime.Status, error) { return d.attempts.List() }

// Remove deletes an exited attempt's container, snapshot and logs.
func (d *Driver) Remove(id runtime.ContainerID) error {
	return d.attempts.Remove(id, d.removeAttempt)
}

// removeAttempt deletes the attempt's container (with its snapshot) and its
// log files.
func (d *Driver) removeAttempt(a *attempt) error {
	if err := d.deleteContainer(d.ctx, a.Data.cid); err != nil {
		return err
	}
	return a.Log.Remove()
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
	ids, err := d.attempts.PodAttempts(podUID)
	if err != nil {
		return err
	}
	d.mu.Lock()
	pn := d.pods[podUID]
	d.mu.Unlock()

	err = attempts.ForEach(ids, func(id runtime.ContainerID) error {
		if _, err := d.Stop(ctx, id, grace); err != nil {
			return err
		}
		a, _, err := d.attempts.Lookup(id)
		if err != nil {
			return nil // removed meanwhile
		}
		if err := d.removeAttempt(a); err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
		d.attempts.Drop(id)
		return nil
	})
	if err != nil {
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
		if n, err := d.network(); err == nil {
			_ = n.del(d.nsctx(ctx), rec)
		}
	}
	if err := removeNetNS(d.netnsPath(podUID)); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	if err := os.RemoveAll(d.files.Pod(podUID)); err != nil {
		return fmt.Errorf("remove pod %s: %w", podUID, err)
	}
	d.log.Info("removed pod", "uid", podUID, "attempts", len(ids))
	return nil
}
