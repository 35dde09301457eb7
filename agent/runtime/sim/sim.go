// Package sim is a runtime driver that runs nothing, for scale simulation:
// many agents on one machine whose pods cost only memory. Start records a
// running attempt with a fake PID, Stop marks it exited (Completed, exit
// code 0), Logs are empty and Exec succeeds without running anything.
//
// Exit lets a test make an attempt exit on its own (a crash), so the
// kubelet's restart logic can be driven without real processes. State is in
// memory only: a new driver knows nothing.
package sim

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/attempts"
	"github.com/shoal-dev/shoal/agent/runtime/internal/lifecycle"
)

// Name is the driver's name for --runtime.
const Name = "sim"

// firstPID is the first fake PID; high so that it is never mistaken for a
// real process of a small test machine.
const firstPID = 1 << 22

// Config configures a Driver.
type Config struct {
	// Clock stamps StartedAt and FinishedAt.
	Clock func() time.Time
}

// DefaultConfig uses the wall clock.
func DefaultConfig() Config { return Config{Clock: time.Now} }

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Clock == nil {
		return fmt.Errorf("sim runtime config: clock: must not be nil")
	}
	return nil
}

// Driver is the simulated runtime. Create it with New or NewWithConfig.
type Driver struct {
	clock func() time.Time

	mu       sync.Mutex
	attempts map[runtime.ContainerID]*runtime.Status
	nextPID  int

	life *lifecycle.Life // Events, and closed
}

var _ runtime.Driver = (*Driver)(nil)

// New returns a driver with DefaultConfig.
func New() *Driver { return NewWithConfig(DefaultConfig()) }

// NewWithConfig returns a driver; a nil Clock takes the wall clock.
func NewWithConfig(cfg Config) *Driver {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Driver{
		clock:    cfg.Clock,
		attempts: make(map[runtime.ContainerID]*runtime.Status),
		nextPID:  firstPID,
		life:     lifecycle.New(context.Background()),
	}
}

// Name returns "sim".
func (d *Driver) Name() string { return Name }

// Events delivers every exit (Stop, Exit, RemovePod) of a running attempt.
func (d *Driver) Events() <-chan runtime.Status { return d.life.Events() }

// Close stops the event goroutine and closes Events.
func (d *Driver) Close() error {
	d.life.Close(nil)
	return nil
}

// Start records a running attempt.
func (d *Driver) Start(ctx context.Context, pod runtime.Pod, c runtime.ContainerSpec, attempt int) (runtime.Status, error) {
	id := runtime.ContainerID{PodUID: pod.UID, Name: c.Name, Attempt: attempt}
	if pod.UID == "" || c.Name == "" || attempt < 0 || strings.Contains(pod.UID+c.Name, "/") {
		return runtime.Status{}, fmt.Errorf("start container %s: invalid id", id)
	}
	if err := ctx.Err(); err != nil {
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.life.Closed(); err != nil {
		return runtime.Status{}, err
	}
	if d.attempts[id] != nil {
		return runtime.Status{}, fmt.Errorf("start container %s: %w", id, runtime.ErrExists)
	}
	st := &runtime.Status{ID: id, Pod: pod, Running: true, PID: d.nextPID, StartedAt: d.clock()}
	d.nextPID++
	d.attempts[id] = st
	return *st, nil
}

// get returns the attempt, with d.mu held.
func (d *Driver) get(id runtime.ContainerID) (*runtime.Status, error) {
	if err := d.life.Closed(); err != nil {
		return nil, err
	}
	st := d.attempts[id]
	if st == nil {
		return nil, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return st, nil
}

// exit marks a running attempt exited and queues the event, with d.mu held.
func (d *Driver) exit(st *runtime.Status, code int) {
	st.Running = false
	st.FinishedAt = d.clock()
	st.ExitCode = code
	st.Reason = runtime.ReasonCompleted
	if code != 0 {
		st.Reason = runtime.ReasonError
	}
	d.life.Emit(*st)
}

// Stop marks the attempt exited with code 0 at once; grace is not waited.
func (d *Driver) Stop(ctx context.Context, id runtime.ContainerID, grace time.Duration) (runtime.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.get(id)
	if err != nil {
		return runtime.Status{}, err
	}
	if st.Running {
		d.exit(st, 0)
	}
	return *st, nil
}

// Exit makes a running attempt exit with code, as if it had crashed (code
// non-zero) or finished (0). It is the simulation's hook for tests.
func (d *Driver) Exit(id runtime.ContainerID, code int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.get(id)
	if err != nil {
		return err
	}
	if !st.Running {
		return fmt.Errorf("exit container %s: %w", id, runtime.ErrNotRunning)
	}
	d.exit(st, code)
	return nil
}

// Status returns the attempt's status.
func (d *Driver) Status(id runtime.ContainerID) (runtime.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.get(id)
	if err != nil {
		return runtime.Status{}, err
	}
	return *st, nil
}

// List returns every attempt, ordered by pod uid, name, attempt.
func (d *Driver) List() ([]runtime.Status, error) {
	if err := d.life.Closed(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	out := make([]runtime.Status, 0, len(d.attempts))
	for _, st := range d.attempts {
		out = append(out, *st)
	}
	d.mu.Unlock()
	attempts.SortStatuses(out)
	return out, nil
}

// Remove forgets an exited attempt.
func (d *Driver) Remove(id runtime.ContainerID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.get(id)
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if st.Running {
		return fmt.Errorf("remove container %s: %w", id, runtime.ErrRunning)
	}
	delete(d.attempts, id)
	return nil
}

// RemovePod stops and forgets every attempt of the pod.
func (d *Driver) RemovePod(ctx context.Context, podUID string, grace time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.life.Closed(); err != nil {
		return err
	}
	for id, st := range d.attempts {
		if id.PodUID == podUID {
			if st.Running {
				d.exit(st, 0)
			}
			delete(d.attempts, id)
		}
	}
	return nil
}

// Logs returns an empty log, follow or not.
func (d *Driver) Logs(ctx context.Context, id runtime.ContainerID, follow bool) (io.ReadCloser, error) {
	if _, err := d.Status(id); err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// Exec runs nothing and returns exit code 0 for a running attempt.
func (d *Driver) Exec(ctx context.Context, id runtime.ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	st, err := d.Status(id)
	if err != nil {
		return -1, err
	}
	if !st.Running {
		return -1, fmt.Errorf("exec in container %s: %w", id, runtime.ErrNotRunning)
	}
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	return 0, nil
}
