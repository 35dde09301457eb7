package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// current returns the container's current attempt id, and whether the pod
// can still start another (it is not terminal and not being removed).
func (k *Kubelet) current(namespace, pod, container string) (runtime.ContainerID, bool, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.pods {
		if p.namespace != namespace || p.name != pod {
			continue
		}
		c := p.containers[container]
		if c == nil || c.attempt < 0 {
			return runtime.ContainerID{}, false, false, fmt.Errorf("container %q of pod %q has not started yet", container, pod)
		}
		more := !p.terminal && !p.removing
		return c.id(), c.running, more, nil
	}
	return runtime.ContainerID{}, false, false, fmt.Errorf("pod %q is not running on this node", pod)
}

// Logs streams a container's log. With previous it reads the attempt before
// the current one; with follow it keeps streaming, across restarts, until
// ctx ends or the pod can run no more attempts.
func (k *Kubelet) Logs(ctx context.Context, namespace, pod, container string, follow, previous bool, tailLines int64, send func([]byte) error) error {
	id, _, _, err := k.current(namespace, pod, container)
	if err != nil {
		return err
	}
	if previous {
		if id.Attempt == 0 {
			return fmt.Errorf("previous terminated container %q in pod %q not found", container, pod)
		}
		id.Attempt--
		follow = false
	}
	var skip int64
	if tailLines > 0 {
		// The tail of what is there now, then follow from its end.
		rc, err := k.cfg.Driver.Logs(ctx, id, false)
		if err != nil {
			return err
		}
		skip, err = sendTail(rc, tailLines, send)
		rc.Close()
		if err != nil || !follow {
			return err
		}
	}
	for {
		rc, err := k.cfg.Driver.Logs(ctx, id, follow)
		if err != nil {
			return err
		}
		if skip > 0 {
			_, err = io.CopyN(io.Discard, rc, skip)
			skip = 0
		}
		if err == nil {
			err = copyChunks(rc, send)
		}
		rc.Close()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil || !follow {
			return err
		}
		// The attempt ended: wait for the next one.
		next, ok := k.waitNextAttempt(ctx, namespace, pod, container, id.Attempt)
		if !ok {
			return nil
		}
		id = next
	}
}

func (k *Kubelet) waitNextAttempt(ctx context.Context, namespace, pod, container string, after int) (runtime.ContainerID, bool) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		id, _, more, err := k.current(namespace, pod, container)
		if err != nil {
			return id, false
		}
		if id.Attempt > after {
			return id, true
		}
		if !more {
			return id, false
		}
		select {
		case <-ctx.Done():
			return id, false
		case <-tick.C:
		}
	}
}

func copyChunks(r io.Reader, send func([]byte) error) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if serr := send(bytes.Clone(buf[:n])); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sendTail reads r to its end, sends its last n lines and returns how many
// bytes it read.
func sendTail(r io.Reader, n int64, send func([]byte) error) (int64, error) {
	br := bufio.NewReader(r)
	var lines [][]byte
	var read int64
	for {
		line, err := br.ReadBytes('\n')
		read += int64(len(line))
		if len(line) > 0 {
			lines = append(lines, line)
			if int64(len(lines)) > n {
				lines = lines[1:]
			}
		}
		if err != nil {
			break
		}
	}
	for _, l := range lines {
		if err := send(l); err != nil {
			return read, err
		}
	}
	return read, nil
}

// Exec runs a command in the container's environment and returns its exit
// code.
func (k *Kubelet) Exec(ctx context.Context, namespace, pod, container string, cmd []string, stdin []byte, stdout, stderr func([]byte) error) (int, error) {
	id, running, _, err := k.current(namespace, pod, container)
	if err != nil {
		return 0, err
	}
	if !running {
		return 0, fmt.Errorf("container %q in pod %q is not running", container, pod)
	}
	return k.cfg.Driver.Exec(ctx, id, cmd, bytes.NewReader(stdin), funcWriter(stdout), funcWriter(stderr))
}

type funcWriter func([]byte) error

func (f funcWriter) Write(p []byte) (int, error) {
	if err := f(bytes.Clone(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
