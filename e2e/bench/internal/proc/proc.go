// Package proc runs the daemons a benchmark starts side by side (shoal
// agents, etcd members): finding their binaries, start with output
// appended to a log, SIGKILL of the process group, wait, restart with the
// same arguments and data, and at the end stop with the log's last lines.
package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one daemon the bench started (a shoal agent or an etcd member).
// It can be killed with SIGKILL and started again with the same arguments
// and data directory.
type Proc struct {
	Name    string
	Bin     string
	Args    []string
	Env     []string // nil inherits the bench's environment
	LogPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Start runs the process, appending its output to logPath.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("start %s: already running", p.Name)
		}
	}
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	fmt.Fprintf(f, "=== start %s %s at %s\n", p.Bin, strings.Join(p.Args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = p.Env
	// Pdeathsig: the daemons die with the bench even when it crashes
	// before its cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done, p.log = cmd, done, f
	return nil
}

// Exited reports whether a started process has ended.
func (p *Proc) Exited() bool {
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

// Sigkill sends SIGKILL to the process group and returns at once; the
// caller takes its clock reading just before calling it.
func (p *Proc) Sigkill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("kill %s: not started", p.Name)
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", p.Name, err)
	}
	return nil
}

// Wait waits up to d for the process to end and closes its log.
func (p *Proc) Wait(d time.Duration) error {
	p.mu.Lock()
	done, f := p.done, p.log
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
	default:
		select {
		case <-done:
		case <-time.After(d):
			return fmt.Errorf("%s still running %s after SIGKILL", p.Name, d)
		}
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

// Stop kills the process if it runs and waits for it.
func (p *Proc) Stop() error {
	if p.Exited() {
		return p.Wait(0)
	}
	return errors.Join(p.Sigkill(), p.Wait(10*time.Second))
}

// Restart waits for a killed process to be gone and starts it again.
func (p *Proc) Restart() error {
	if err := p.Wait(10 * time.Second); err != nil {
		return err
	}
	return p.Start()
}

// Tail returns the last n bytes of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	return Last(b, n)
}

// Last returns the last n bytes of b, such as a failed command's output.
func Last(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// PrintTails prints the last lines of each process's log on w, for a run
// that failed; nil processes (never made) are passed over.
func PrintTails(w io.Writer, procs ...*Proc) {
	for _, p := range procs {
		if p != nil {
			fmt.Fprintf(w, "---- last lines of %s (%s) ----\n%s\n", p.Name, p.LogPath, p.Tail(3000))
		}
	}
}

// StopAll stops each process in turn, printing a failure on w after
// "prog: "; nil processes are passed over.
func StopAll(w io.Writer, prog string, procs ...*Proc) {
	for _, p := range procs {
		if p == nil {
			continue
		}
		if err := p.Stop(); err != nil {
			fmt.Fprintln(w, prog+":", err)
		}
	}
}

// MkdirTemp makes a new directory in parent for the run's data and logs,
// with symlinks resolved (a /tmp link) so that the working directories of
// the processes under it, as /proc shows them, start with it: cleanup
// (harness.KillUnder) finds the processes left behind by it.
func MkdirTemp(parent, prefix string) (string, error) {
	dir, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(dir)
}

// Shoal finds the shoal binary bin (a path or a name in PATH) and makes
// its path absolute.
func Shoal(bin string) (string, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("shoal binary: %w (run make build, or set SHOAL_BIN)", err)
	}
	return filepath.Abs(path)
}

// Testapp finds the shoal-testapp binary bin, by default the one next to
// the shoal binary shoalBin, and makes its path absolute.
func Testapp(bin, shoalBin string) (string, error) {
	if bin == "" {
		bin = filepath.Join(filepath.Dir(shoalBin), "shoal-testapp")
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("shoal-testapp binary: %w (make build builds it; or set SHOAL_TESTAPP_BIN)", err)
	}
	return filepath.Abs(path)
}
