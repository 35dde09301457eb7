// Package attempts is the bookkeeping of container attempts that the
// process and containerd drivers share: which attempts exist and their
// statuses, the reservation of an id while Start runs, the exit that
// closes an attempt's done channel and goes onto Events, the Stop
// sequence (SIGTERM, grace, SIGKILL), and the checks of Remove and Exec.
// What an attempt is made of (a process, a containerd task) is the
// driver's, kept in Attempt.Data.
package attempts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/layout"
	"github.com/shoal-dev/shoal/agent/runtime/internal/lifecycle"
	"github.com/shoal-dev/shoal/agent/runtime/internal/logfile"
)

// Attempt is one container attempt known to a driver.
type Attempt[T any] struct {
	// Data is the driver's own. It is set before the attempt is published
	// (Reserve until Publish, or Adopt) and only read afterwards, unless the
	// driver guards it itself.
	Data T
	// Log is the attempt's log file.
	Log *logfile.Log

	st       runtime.Status // guarded by Table.mu
	starting bool           // reserved by Start, not yet started; guarded by Table.mu
	removing bool           // Remove in progress; guarded by Table.mu
	done     chan struct{}  // closed once the exit is recorded
}

// Done is closed once the attempt's exit is recorded.
func (a *Attempt[T]) Done() <-chan struct{} { return a.done }

// Exited reports whether Done is closed.
func (a *Attempt[T]) Exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// Table is a driver's attempts. All methods are safe for concurrent use.
type Table[T any] struct {
	life    *lifecycle.Life
	log     *slog.Logger
	logPath func(runtime.ContainerID) string

	mu sync.Mutex
	m  map[runtime.ContainerID]*Attempt[T]
}

// NewTable returns an empty table. Its methods fail with
// runtime.ErrClosed once life is closed; exits go onto life's Events and
// are logged on log; logPath names an attempt's log file.
func NewTable[T any](life *lifecycle.Life, log *slog.Logger, logPath func(runtime.ContainerID) string) *Table[T] {
	return &Table[T]{life: life, log: log, logPath: logPath, m: make(map[runtime.ContainerID]*Attempt[T])}
}

func (t *Table[T]) newAttempt(st runtime.Status, data T) *Attempt[T] {
	return &Attempt[T]{Data: data, Log: logfile.New(t.logPath(st.ID)), st: st, done: make(chan struct{})}
}

// Adopt adds an attempt found when the driver starts (st.ID names it); if
// st is not Running its exit counts as recorded.
func (t *Table[T]) Adopt(st runtime.Status, data T) *Attempt[T] {
	a := t.newAttempt(st, data)
	if !st.Running {
		close(a.done)
	}
	t.mu.Lock()
	t.m[st.ID] = a
	t.mu.Unlock()
	return a
}

// Reserve takes id for a Start: the attempt is invisible (ErrNotFound)
// until Publish, and Abort gives the id back.
func (t *Table[T]) Reserve(id runtime.ContainerID, data T) (*Attempt[T], error) {
	if err := t.life.Closed(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[id] != nil {
		return nil, fmt.Errorf("start container %s: %w", id, runtime.ErrExists)
	}
	a := t.newAttempt(runtime.Status{ID: id}, data)
	a.starting = true
	t.m[id] = a
	return a, nil
}

// Abort forgets a reserved attempt whose start failed.
func (t *Table[T]) Abort(id runtime.ContainerID) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

// Publish makes a reserved attempt visible with its first status.
func (t *Table[T]) Publish(a *Attempt[T], st runtime.Status) {
	t.mu.Lock()
	a.st, a.starting = st, false
	t.mu.Unlock()
}

// Lookup returns the attempt and a copy of its status.
func (t *Table[T]) Lookup(id runtime.ContainerID) (*Attempt[T], runtime.Status, error) {
	if err := t.life.Closed(); err != nil {
		return nil, runtime.Status{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.m[id]
	if a == nil || a.starting {
		return nil, runtime.Status{}, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return a, a.st, nil
}

// Status is Driver.Status.
func (t *Table[T]) Status(id runtime.ContainerID) (runtime.Status, error) {
	_, st, err := t.Lookup(id)
	return st, err
}

// StatusOf returns a copy of a's status.
func (t *Table[T]) StatusOf(a *Attempt[T]) runtime.Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return a.st
}

// List is Driver.List: every started attempt, ordered by SortStatuses.
func (t *Table[T]) List() ([]runtime.Status, error) {
	if err := t.life.Closed(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	out := make([]runtime.Status, 0, len(t.m))
	for _, a := range t.m {
		if !a.starting {
			out = append(out, a.st)
		}
	}
	t.mu.Unlock()
	SortStatuses(out)
	return out, nil
}

// SortStatuses orders statuses by pod uid, container name and attempt.
func SortStatuses(sts []runtime.Status) {
	slices.SortFunc(sts, func(x, y runtime.Status) int {
		return cmp.Or(cmp.Compare(x.ID.PodUID, y.ID.PodUID), cmp.Compare(x.ID.Name, y.ID.Name),
			cmp.Compare(x.ID.Attempt, y.ID.Attempt))
	})
}

// Running returns the started attempts whose exit is not recorded.
func (t *Table[T]) Running() []*Attempt[T] {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Attempt[T]
	for _, a := range t.m {
		if !a.starting && a.st.Running {
			out = append(out, a)
		}
	}
	return out
}

// RunningLogs returns the logs of Running, for logfile.Rotator.
func (t *Table[T]) RunningLogs() []*logfile.Log {
	var out []*logfile.Log
	for _, a := range t.Running() {
		out = append(out, a.Log)
	}
	return out
}

// PodAttempts returns the ids of the pod's started attempts, for
// RemovePod, which fails unless podUID can name the pod's directory.
func (t *Table[T]) PodAttempts(podUID string) ([]runtime.ContainerID, error) {
	if !layout.ValidName(podUID) {
		return nil, fmt.Errorf("remove pod %q: not a valid pod uid", podUID)
	}
	if err := t.life.Closed(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []runtime.ContainerID
	for id, a := range t.m {
		if id.PodUID == podUID && !a.starting {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// PodInUse reports whether the pod has an attempt other than except,
// started or being started.
func (t *Table[T]) PodInUse(podUID string, except runtime.ContainerID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.m {
		if id.PodUID == podUID && id != except {
			return true
		}
	}
	return false
}

// ExecTarget returns the running attempt that Exec runs cmd in.
func (t *Table[T]) ExecTarget(id runtime.ContainerID, cmd []string) (*Attempt[T], error) {
	a, st, err := t.Lookup(id)
	if err != nil {
		return nil, err
	}
	if !st.Running {
		return nil, fmt.Errorf("exec in container %s: %w", id, runtime.ErrNotRunning)
	}
	if len(cmd) == 0 {
		return nil, fmt.Errorf("exec in container %s: empty command", id)
	}
	return a, nil
}

// removable returns the attempt Remove may delete, with t.mu held.
func (t *Table[T]) removable(id runtime.ContainerID) (*Attempt[T], error) {
	a := t.m[id]
	switch {
	case a == nil || a.starting || a.removing:
		return nil, fmt.Errorf("remove container %s: %w", id, runtime.ErrNotFound)
	case a.st.Running:
		return nil, fmt.Errorf("remove container %s: %w", id, runtime.ErrRunning)
	}
	return a, nil
}

// Take forgets the exited attempt id and returns it; deleting its files is
// the caller's.
func (t *Table[T]) Take(id runtime.ContainerID) (*Attempt[T], error) {
	if err := t.life.Closed(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.removable(id)
	if err != nil {
		return nil, err
	}
	delete(t.m, id)
	return a, nil
}

// Remove deletes the exited attempt id with del, which runs without the
// table's lock, and forgets it if del succeeds. Meanwhile the attempt is
// still known, but a second Remove fails with ErrNotFound.
func (t *Table[T]) Remove(id runtime.ContainerID, del func(*Attempt[T]) error) error {
	if err := t.life.Closed(); err != nil {
		return err
	}
	t.mu.Lock()
	a, err := t.removable(id)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	a.removing = true
	t.mu.Unlock()
	err = del(a)
	t.mu.Lock()
	if err != nil {
		a.removing = false
	} else {
		delete(t.m, id)
	}
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// Drop forgets the attempts of ids that are known and returns them.
func (t *Table[T]) Drop(ids ...runtime.ContainerID) []*Attempt[T] {
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []*Attempt[T]
	for _, id := range ids {
		if a := t.m[id]; a != nil {
			gone = append(gone, a)
			delete(t.m, id)
		}
	}
	return gone
}

// Finish makes a's exit visible, once the driver has recorded it: the
// status, then Done, then, with emit, Events. Exits found when the driver
// starts are not emitted.
func (t *Table[T]) Finish(a *Attempt[T], st runtime.Status, emit bool) {
	t.mu.Lock()
	a.st = st
	t.mu.Unlock()
	close(a.done)
	t.log.Info("container exited", append(Attrs(st), "exitCode", st.ExitCode, "reason", st.Reason)...)
	if emit {
		t.life.Emit(st)
	}
}

// ForEach calls f for every id, concurrently, and joins the errors.
func ForEach(ids []runtime.ContainerID, f func(runtime.ContainerID) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, id := range ids {
		wg.Go(func() {
			if err := f(id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Attrs are the log attributes naming an attempt.
func Attrs(st runtime.Status) []any {
	return []any{
		"pod", st.Pod.Namespace + "/" + st.Pod.Name, "uid", st.Pod.UID,
		"container", st.ID.Name, "attempt", st.ID.Attempt, "pid", st.PID,
	}
}

// Logs is Driver.Logs: the attempt's log, read as logfile.Log.Open says,
// to the end once the exit is recorded.
func (t *Table[T]) Logs(ctx context.Context, id runtime.ContainerID, follow bool) (io.ReadCloser, error) {
	a, _, err := t.Lookup(id)
	if err != nil {
		return nil, err
	}
	return a.Log.Open(ctx, t.life, a.done, follow)
}
