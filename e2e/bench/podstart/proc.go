package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one agent process the bench started.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// start runs the process, appending its output to logPath.
func (p *proc) start() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	fmt.Fprintf(f, "=== start %s %s at %s\n", p.bin, strings.Join(p.args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = p.env
	// Pdeathsig: the agents die with the bench even when it crashes
	// before its cleanup runs (their containers do not; see killUnder).
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

// stop SIGKILLs the process group if it runs and waits for it.
func (p *proc) stop() error {
	if p.cmd == nil {
		return nil
	}
	var err error
	select {
	case <-p.done:
	default:
		if kerr := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
			err = fmt.Errorf("kill %s: %w", p.name, kerr)
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			err = errors.Join(err, fmt.Errorf("%s still running 10s after SIGKILL", p.name))
		}
	}
	p.log.Close()
	p.cmd = nil
	return err
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

// pidsUnder lists the processes whose working directory is inside dir:
// the containers the agents' process runtime started for this bench (each
// runs in its container directory under the agent's data dir). Other
// processes of the machine are never matched.
func pidsUnder(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		if cwd == dir || strings.HasPrefix(cwd, dir+string(filepath.Separator)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killUnder SIGKILLs what pidsUnder finds: containers outlive their agent
// by design, so the bench ends them itself.
func killUnder(dir string) int {
	pids := pidsUnder(dir)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}
