package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// execWaitDelay bounds how long Exec waits for output pipes after its
// process is killed (a grandchild may hold them open).
const execWaitDelay = 2 * time.Second

// Exec runs cmd as a child of the agent with the container's environment
// and working dir, in a process group of its own (not the container's:
// Stop does not reach it). ctx ending kills that group. The exit code is
// 128+signal when a signal killed it.
func (d *Driver) Exec(ctx context.Context, id runtime.ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	a, err := d.attempts.ExecTarget(id, cmd)
	if err != nil {
		return -1, err
	}
	rec := &a.Data
	path, _ := pathOf(rec.Env)
	bin, err := lookPath(cmd[0], path, rec.WorkDir)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	c := exec.CommandContext(ctx, bin)
	c.Args = cmd
	c.Env = rec.Env
	c.Dir = rec.WorkDir
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = execWaitDelay
	err = c.Run()
	if ctx.Err() != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, context.Cause(ctx))
	}
	if c.ProcessState == nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	code := c.ProcessState.ExitCode()
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok {
		code = exitFromWaitStatus(ws).code
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && !errors.Is(err, exec.ErrWaitDelay) {
		// The command ran, but copying its stdin or output failed.
		return code, fmt.Errorf("exec in container %s: %w", id, err)
	}
	return code, nil
}
