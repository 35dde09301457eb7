package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// execDeleteTimeout bounds the cleanup of an exec process.
const execDeleteTimeout = 10 * time.Second

// Exec runs cmd as an extra process of the container's task: same
// namespaces, cgroup, user, env and working dir as the container. ctx
// ending kills it. The exit code is 128+signal when a signal killed it.
func (d *Driver) Exec(ctx context.Context, id runtime.ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	a, err := d.attempts.ExecTarget(id, cmd)
	if err != nil {
		return -1, err
	}
	h := a.Data
	if h.task == nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, runtime.ErrNotRunning)
	}
	nctx := d.nsctx(ctx)
	// ctx ending during setup surfaces from containerd as its own error
	// (a gRPC status); report ctx's, as the exit path does.
	fail := func(err error) error {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("exec in container %s: %w", id, err)
	}
	spec, err := h.ctr.Spec(nctx)
	if err != nil {
		return -1, fail(err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	// The two streams are copied by two goroutines and callers may pass
	// one writer for both (probes do).
	var mu sync.Mutex
	stdout, stderr = lockedWriter{&mu, stdout}, lockedWriter{&mu, stderr}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	execID := "exec-" + hex.EncodeToString(b)
	p, err := h.task.Exec(nctx, execID, &pspec,
		cio.NewCreator(cio.WithStreams(stdin, stdout, stderr), cio.WithFIFODir(d.fifoDir())))
	if err != nil {
		if errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) {
			return -1, fmt.Errorf("exec in container %s: %w", id, runtime.ErrNotRunning)
		}
		return -1, fail(err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(d.ctx, execDeleteTimeout)
		defer cancel()
		// Waits for the output to be copied, then frees the fifos.
		if _, err := p.Delete(dctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			d.log.Debug("cannot delete exec process", "id", h.cid, "exec", execID, "err", err)
		}
	}()
	// Waited on the driver's context: ctx ending must kill the process,
	// not lose its exit.
	exitc, err := p.Wait(d.ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	if err := p.Start(nctx); err != nil {
		return -1, fail(err)
	}
	select {
	case es := <-exitc:
		if err := es.Error(); err != nil {
			return -1, fmt.Errorf("exec in container %s: %w", id, err)
		}
		return int(es.ExitCode()), nil
	case <-ctx.Done():
		_ = p.Kill(d.ctx, syscall.SIGKILL)
		<-exitc
		return -1, fmt.Errorf("exec in container %s: %w", id, context.Cause(ctx))
	case <-d.stop:
		return -1, runtime.ErrClosed
	}
}

func (d *Driver) fifoDir() string { return d.cfg.Dir + "/fifo" }

// lockedWriter serialises writes to w (nil discards them).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
