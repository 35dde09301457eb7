package process

import (
	"errors"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime/internal/attempts"
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
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-d.life.Done():
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
	for _, a := range d.attempts.Running() {
		if ex, exited := checkExit(a.Data.PID, a.Data.ProcStart); exited {
			d.markExited(a, ex, emit)
		}
	}
}

// markExited persists the exit, then publishes it: the record is on disk
// before anyone waiting on done (Stop) returns.
func (d *Driver) markExited(a *attempt, ex exitInfo, emit bool) {
	rec := a.Data
	rec.Exited = true
	rec.FinishedAt = d.cfg.Clock()
	rec.ExitCode, rec.Reason, rec.Message = ex.code, ex.reason, ex.message
	if err := d.writeRecord(&rec); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("cannot record container exit", append(attempts.Attrs(rec.status()), "err", err)...)
	}
	d.attempts.Finish(a, rec.status(), emit)
}
