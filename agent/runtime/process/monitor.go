package process

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// poke asks the monitor to look for exits now.
func (d *Driver) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// monitor is the one goroutine that observes exits: at once for children
// (SIGCHLD), every PollInterval for re-adopted processes.
func (d *Driver) monitor() {
	defer d.wg.Done()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-sigs:
		case <-d.kick:
		case <-tick.C:
		}
		d.reap(true)
	}
}

// reap records the exit of every running attempt that has exited. Only the
// monitor calls it (and New, before the monitor starts), so an attempt's
// exit is recorded once.
func (d *Driver) reap(emit bool) {
	type target struct {
		a     *attempt
		pid   int
		start uint64
	}
	d.mu.Lock()
	var targets []target
	for _, a := range d.attempts {
		if !a.starting && !a.rec.Exited {
			targets = append(targets, target{a, a.rec.PID, a.rec.ProcStart})
		}
	}
	d.mu.Unlock()
	for _, t := range targets {
		if ex, exited := checkExit(t.pid, t.start); exited {
			d.markExited(t.a, ex, emit)
		}
	}
}

// markExited persists the exit, then publishes it: the record is on disk
// before anyone waiting on done (Stop) returns.
func (d *Driver) markExited(a *attempt, ex exitInfo, emit bool) {
	d.mu.Lock()
	rec := a.rec
	d.mu.Unlock()
	rec.Exited = true
	rec.FinishedAt = d.cfg.Clock()
	rec.ExitCode, rec.Reason, rec.Message = ex.code, ex.reason, ex.message
	if err := d.writeRecord(&rec); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("cannot record container exit", append(attemptAttrs(&rec), "err", err)...)
	}
	d.mu.Lock()
	a.rec = rec
	d.mu.Unlock()
	close(a.done)
	d.log.Info("container exited", append(attemptAttrs(&rec), "exitCode", rec.ExitCode, "reason", rec.Reason)...)
	if emit {
		d.events.Push(rec.status())
	}
}

// rotator is the one goroutine that rotates logs (copy-truncate).
func (d *Driver) rotator() {
	defer d.wg.Done()
	tick := time.NewTicker(d.cfg.LogCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
		d.mu.Lock()
		var running []*attempt
		var paths []string
		for id, a := range d.attempts {
			if !a.starting && !a.rec.Exited {
				running = append(running, a)
				paths = append(paths, d.logPath(id))
			}
		}
		d.mu.Unlock()
		for i, a := range running {
			fi, err := os.Stat(paths[i])
			if err != nil || fi.Size() <= d.cfg.MaxLogBytes {
				continue
			}
			a.logMu.Lock()
			err = rotate(paths[i])
			a.logMu.Unlock()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				d.log.Warn("cannot rotate container log", "path", paths[i], "err", err)
			}
		}
	}
}

// rotate copies path to path.1 (replaced atomically) and truncates path.
// The child writes with O_APPEND, so after the truncate it writes at the
// new end, 0. Copying again until the file stops growing (a few rounds at
// most) narrows the window in which new bytes are lost to the instant
// between the last read and the truncate.
func rotate(path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	for range 4 {
		n, err := io.Copy(tmp, src) // from where the last round stopped
		if err != nil {
			tmp.Close()
			return err
		}
		if n == 0 {
			break
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Rename before truncate: a crash in between duplicates lines rather
	// than losing them.
	if err := os.Rename(tmp.Name(), path+".1"); err != nil {
		return err
	}
	return os.Truncate(path, 0)
}
