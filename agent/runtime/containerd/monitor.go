package containerd

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	cgroup1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/attempts"
)

// adopt rebuilds the driver's state from containerd and Dir: pod networks
// whose namespace is still mounted, and every container of the namespace
// that carries the driver's labels. Exits that happened while no driver
// watched are recorded now, before anyone can List, and are not sent on
// Events. It returns the attempts that still run, to be watched.
func (d *Driver) adopt() ([]*attempt, error) {
	recs, _ := filepath.Glob(filepath.Join(d.files.Pods(), "*", "pod.json"))
	for _, path := range recs {
		rec, err := readPodRecord(path)
		uid := filepath.Base(filepath.Dir(path))
		switch {
		case err != nil || rec.Pod.UID != uid:
			d.log.Warn("skipping unreadable pod network record", "path", path, "err", err)
			continue
		case !isNetNS(rec.NetNS):
			// The mount is gone (the host rebooted): release the address;
			// the next Start makes a new namespace.
			d.log.Info("pod network namespace is gone; releasing its address", "uid", uid, "ip", rec.IP)
			if err := d.delNetwork(d.ctx, rec); err != nil {
				d.log.Warn("cni del of a vanished pod network", "uid", uid, "err", err)
			}
			_ = os.Remove(path)
			continue
		}
		d.pods[uid] = &podNet{rec: rec}
	}

	ctrs, err := d.client.Containers(d.ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var watch []*attempt
	running, adopted := 0, 0
	for _, ctr := range ctrs {
		info, err := ctr.Info(d.ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", ctr.ID(), err)
		}
		st, exited, ok := statusFromLabels(info.Labels, info.CreatedAt)
		if !ok || containerdID(st.ID) != ctr.ID() {
			d.log.Warn("ignoring a container that is not the driver's", "id", ctr.ID())
			continue
		}
		h := handle{cid: ctr.ID(), ctr: ctr}
		task, err := ctr.Task(d.ctx, nil)
		var stopped *client.Status // the task has exited
		switch {
		case err != nil && !errdefs.IsNotFound(err):
			return nil, fmt.Errorf("container %s: task: %w", ctr.ID(), err)
		case exited:
			if err == nil { // recorded, but the task's delete did not happen
				if _, err := task.Delete(d.ctx); err != nil && !errdefs.IsNotFound(err) {
					d.log.Warn("cannot delete the task of an exited container", "id", ctr.ID(), "err", err)
				}
			}
		case err != nil: // no task and no recorded exit: the host rebooted
			unknownExit(&st, d.cfg.Clock(), "the container's task was gone when the driver started (host restart?)")
			d.saveExit(h, st)
		default:
			ts, err := task.Status(d.ctx)
			if err != nil {
				return nil, fmt.Errorf("container %s: task status: %w", ctr.ID(), err)
			}
			h.task = task
			st.PID = int(task.Pid())
			switch ts.Status {
			case client.Created:
				// Created but never started: the agent died inside Start,
				// which therefore did not succeed. Nothing of it stays.
				d.log.Info("deleting a container whose start never finished", "id", ctr.ID())
				if err := d.deleteContainer(d.ctx, ctr.ID()); err != nil {
					d.log.Warn("cannot delete an unstarted container", "id", ctr.ID(), "err", err)
				}
				_ = os.Remove(d.files.Log(st.ID))
				continue
			case client.Stopped:
				stopped = &ts
			}
		}
		// One that is not Running is adopted with its exit recorded.
		a := d.attempts.Adopt(st, h)
		adopted++
		switch {
		case stopped != nil:
			d.recordExit(a, stopped.ExitStatus, stopped.ExitTime, false)
		case st.Running: // running, paused, pausing, unknown: watched
			watch = append(watch, a)
			running++
			d.log.Info("re-adopted container", append(attempts.Attrs(st), "id", h.cid)...)
		}
		if d.pods[st.ID.PodUID] == nil {
			d.pods[st.ID.PodUID] = &podNet{}
		}
	}
	if len(ctrs) > 0 || len(recs) > 0 {
		d.log.Info("scanned runtime state", "containers", adopted, "running", running, "podNetworks", len(recs))
	}
	return watch, nil
}

// watch waits for the attempt's exit and records it. exitc is the wait
// started before the task (nil: start one). A wait that fails while the
// driver runs (containerd restarting) is started again with back-off.
func (d *Driver) watch(a *attempt, exitc <-chan client.ExitStatus) {
	backoff := rewaitBackoff
	for {
		if exitc == nil {
			c, err := a.Data.task.Wait(d.ctx)
			switch {
			case err == nil:
				exitc = c
			case d.life.Closed() != nil:
				return
			case errdefs.IsNotFound(err):
				// The task is gone without an exit we saw (containerd lost
				// its state).
				st := d.attempts.StatusOf(a)
				unknownExit(&st, d.cfg.Clock(), "the container's task vanished from containerd")
				d.attempts.Finish(a, st, true)
				return
			default:
				d.log.Warn("cannot wait on container; retrying", "id", a.Data.cid, "err", err)
				if !d.pause(&backoff) {
					return
				}
				continue
			}
		}
		select {
		case es := <-exitc:
			if es.Error() == nil {
				d.recordExit(a, es.ExitCode(), es.ExitTime(), true)
				return
			}
			if d.life.Closed() != nil {
				return
			}
			d.log.Warn("lost the wait on container; waiting again", "id", a.Data.cid, "err", es.Error())
			exitc = nil
			if !d.pause(&backoff) {
				return
			}
		case <-d.stop:
			return
		}
	}
}

// pause waits *backoff (then doubles it); false if the driver closed.
func (d *Driver) pause(backoff *time.Duration) bool {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	*backoff = min(2**backoff, rewaitMax)
	select {
	case <-t.C:
		return true
	case <-d.stop:
		return false
	}
}

// recordExit records the exit of a's task: OOM kills are read from the
// task's cgroup before the task is deleted (which also flushes the log),
// the exit goes into the container's labels, then into memory and, with
// emit, onto Events. If the driver closes midway the task stays stopped in
// containerd and the next driver records it.
func (d *Driver) recordExit(a *attempt, code uint32, at time.Time, emit bool) {
	st := d.attempts.StatusOf(a)
	if code == client.UnknownExitStatus && at.IsZero() {
		unknownExit(&st, d.cfg.Clock(), "containerd reported no exit status")
	} else {
		exitStatus(&st, code, at, code != 0 && d.oomKilled(a.Data.task))
	}
	if !d.saveExit(a.Data, st) {
		return
	}
	if _, err := a.Data.task.Delete(d.ctx); err != nil && !errdefs.IsNotFound(err) {
		if d.life.Closed() != nil {
			return
		}
		d.log.Warn("cannot delete the task of an exited container", "id", a.Data.cid, "err", err)
	}
	d.attempts.Finish(a, st, emit)
}

// saveExit writes the exit in st into the container's labels; false if the
// driver closed meanwhile.
func (d *Driver) saveExit(h handle, st runtime.Status) bool {
	if _, err := h.ctr.SetLabels(d.ctx, exitLabels(st)); err != nil {
		if d.life.Closed() != nil {
			return false
		}
		// The status stays right in memory; a new driver would find the
		// task deleted without a recorded exit and report it Unknown.
		d.log.Warn("cannot record a container's exit in containerd", "id", h.cid, "err", err)
	}
	return true
}

// oomKilled tells whether the kernel's OOM killer killed a process in the
// task's cgroup (memory.oom_control's oom_kill on cgroup v1,
// memory.events' oom_kill on v2). The cgroup lives until the task is
// deleted, so this is exact for an exited task, unlike the /tasks/oom
// event, which may arrive after the exit.
func (d *Driver) oomKilled(t client.Task) bool {
	m, err := t.Metrics(d.ctx)
	if err != nil {
		d.log.Debug("cannot read task metrics for OOM kills", "err", err)
		return false
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return false
	}
	switch s := v.(type) {
	case *cgroup1stats.Metrics:
		return s.GetMemoryOomControl().GetOomKill() > 0
	case *cgroup2stats.Metrics:
		return s.GetMemoryEvents().GetOomKill() > 0
	}
	return false
}
