package attempts

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// KillWait bounds how long Stop waits for the exit after SIGKILL.
const KillWait = 10 * time.Second

// Stopper is how Stop reaches a driver's attempts.
type Stopper[T any] struct {
	// Signal sends sig to every process of the attempt.
	Signal func(a *Attempt[T], sig syscall.Signal)
	// Poll, if set, is called every PollInterval while Stop waits for an
	// exit, for drivers that do not hear of every exit at once.
	Poll         func()
	PollInterval time.Duration
	// PIDInError names the pid in the error of an attempt that outlives
	// SIGKILL.
	PIDInError bool
}

// Stop is Driver.Stop: it sends SIGTERM, waits up to grace (or until ctx
// ends) for the exit, then sends SIGKILL and waits up to KillWait. It
// returns the final status; an attempt that has exited is left alone.
func (t *Table[T]) Stop(ctx context.Context, id runtime.ContainerID, grace time.Duration, s Stopper[T]) (runtime.Status, error) {
	a, st, err := t.Lookup(id)
	if err != nil {
		return runtime.Status{}, err
	}
	if !st.Running {
		return st, nil
	}
	t.log.Info("stopping container", append(Attrs(st), "grace", grace)...)
	s.Signal(a, syscall.SIGTERM)
	if grace > 0 && !t.waitExit(ctx, a, grace, s) {
		if err := t.life.Closed(); err != nil {
			return st, err
		}
	}
	if !a.Exited() {
		t.log.Info("killing container after grace period", Attrs(st)...)
		s.Signal(a, syscall.SIGKILL)
		if !t.waitExit(context.Background(), a, KillWait, s) {
			if err := t.life.Closed(); err != nil {
				return st, err
			}
			if s.PIDInError {
				return st, fmt.Errorf("stop container %s: pid %d still running %s after SIGKILL", id, st.PID, KillWait)
			}
			return st, fmt.Errorf("stop container %s: still running %s after SIGKILL", id, KillWait)
		}
	}
	return t.Status(id)
}

// waitExit waits until a has exited (true), or timeout, ctx or Close.
func (t *Table[T]) waitExit(ctx context.Context, a *Attempt[T], timeout time.Duration, s Stopper[T]) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var poll <-chan time.Time
	if s.Poll != nil {
		tick := time.NewTicker(s.PollInterval)
		defer tick.Stop()
		poll = tick.C
	}
	for {
		select {
		case <-a.done:
			return true
		case <-poll:
			s.Poll()
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		case <-t.life.Done():
			return false
		}
	}
}
