package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one daemon the bench started (a shoal agent or an etcd member).
// It can be killed with SIGKILL and started again with the same arguments
// and data directory.
type proc struct {
	name    string
	bin     string
	args    []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// start runs the process, appending its output to logPath.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("start %s: already running", p.name)
		}
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	fmt.Fprintf(f, "=== start %s %s at %s\n", p.bin, strings.Join(p.args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig: the daemons die with the bench even when it crashes
	// before its cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done, p.log = cmd, done, f
	return nil
}

// exited reports whether a started process has ended.
func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// sigkill sends SIGKILL to the process group and returns at once; the
// caller takes its clock reading just before calling it.
func (p *proc) sigkill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("kill %s: not started", p.name)
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	return nil
}

// wait waits up to d for the process to end and closes its log.
func (p *proc) wait(d time.Duration) error {
	p.mu.Lock()
	done, f := p.done, p.log
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
	case <-time.After(d):
		return fmt.Errorf("%s still running %s after SIGKILL", p.name, d)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if f != nil && p.log == f {
		fmt.Fprintf(f, "=== exited at %s\n", time.Now().Format(time.RFC3339Nano))
		f.Close()
		p.log = nil
	}
	return nil
}

// stop kills the process if it runs and waits for it.
func (p *proc) stop() error {
	if p.exited() {
		return p.wait(0)
	}
	return errors.Join(p.sigkill(), p.wait(10*time.Second))
}

// restart waits for a killed process to be gone and starts it again.
func (p *proc) restart() error {
	if err := p.wait(10 * time.Second); err != nil {
		return err
	}
	return p.start()
}

// tail returns the last n bytes of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
