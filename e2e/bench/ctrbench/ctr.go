package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	ctrclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
)

// ctrRef is the reference: `ctr run -d` on the same daemon, in a
// namespace of its own.
type ctrRef struct {
	bin, addr, ns, logDir string
	client                *ctrclient.Client // in ns, for cleanup between phases
}

// start runs one container named id and returns how long ctr took: run
// -d creates the container and its snapshot, creates the task and returns
// once it has started. Its output goes to a log file through the shim, as
// a pod's does.
func (c *ctrRef) start(ctx context.Context, id string) (time.Duration, error) {
	args := append([]string{"-a", c.addr, "-n", c.ns, "run", "-d",
		"--log-uri", "file://" + filepath.Join(c.logDir, id+".log"), image, id}, command...)
	cmd := exec.CommandContext(ctx, c.bin, args...)
	t := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t)
	if err != nil {
		return 0, fmt.Errorf("ctr run %s: %w: %s", id, err, proc.Last(out, 500))
	}
	return d, nil
}

// parallel starts n containers with k in flight.
func (c *ctrRef) parallel(ctx context.Context, tag string, n, k int) (parallelRun, error) {
	return inParallel(ctx, n, k, func(ctx context.Context, i int) (time.Duration, error) {
		return c.start(ctx, fmt.Sprintf("ctr-%s-%03d", tag, i))
	})
}

// overhead is the median time of `ctr version` against the daemon: what
// every ctr sample pays for starting ctr and connecting.
func (c *ctrRef) overhead(ctx context.Context, n int) (time.Duration, error) {
	var ds []time.Duration
	for range n {
		t := time.Now()
		if out, err := exec.CommandContext(ctx, c.bin, "-a", c.addr, "version").CombinedOutput(); err != nil {
			return 0, fmt.Errorf("ctr version: %w: %s", err, proc.Last(out, 500))
		}
		ds = append(ds, time.Since(t))
	}
	return stats.Median(ds), nil
}

// removeAll kills and deletes every container of the namespace with its
// task and snapshot, and returns how long that took.
func (c *ctrRef) removeAll(ctx context.Context) (time.Duration, error) {
	t := time.Now()
	ctrs, err := c.client.Containers(ctx)
	if err != nil {
		return 0, fmt.Errorf("list ctr's containers: %w", err)
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	for _, ctr := range ctrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := deleteContainer(ctx, ctr)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return time.Since(t), errors.Join(errs...)
}

func deleteContainer(ctx context.Context, ctr ctrclient.Container) error {
	if task, err := ctr.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, ctrclient.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task %s: %w", ctr.ID(), err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("task of %s: %w", ctr.ID(), err)
	}
	if err := ctr.Delete(ctx, ctrclient.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", ctr.ID(), err)
	}
	return nil
}

// parallelRun is a rate phase: each start's latency, and the wall time
// from the first call until the last start was running.
type parallelRun struct {
	lat  []time.Duration
	wall time.Duration
}

// rate is starts per second.
func (p parallelRun) rate() float64 {
	if p.wall <= 0 {
		return 0
	}
	return float64(len(p.lat)) / p.wall.Seconds()
}

// inParallel calls start(i) for every i below n from k workers, each
// taking the next i when its start returns, and stops at the first error.
// start returns its latency; the run's wall time ends when the last start
// returns.
func inParallel(ctx context.Context, n, k int, start func(context.Context, int) (time.Duration, error)) (parallelRun, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		next int
		lat  = make([]time.Duration, n)
		last time.Time
		wg   sync.WaitGroup
	)
	t0 := time.Now()
	for range min(k, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				d, err := start(ctx, i)
				if err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				lat[i] = d
				last = time.Now()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return parallelRun{}, err
	}
	return parallelRun{lat: lat, wall: last.Sub(t0)}, nil
}
