// Package runtimetest is the contract every runtime.Driver must keep, as a
// test suite that each driver package runs against itself (process, sim,
// and later containerd), so that the kubelet can rely on the same
// behaviour whatever the driver.
package runtimetest

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// Suite describes the driver under test.
type Suite struct {
	// New returns a fresh driver; the suite closes it. Any cleanup of
	// containers the suite leaves behind is New's to register.
	New func(t *testing.T) runtime.Driver
	// Long is a container that runs until stopped and exits on SIGTERM.
	Long runtime.ContainerSpec
}

const wait = 10 * time.Second

var pod = runtime.Pod{UID: "conformance-uid", Namespace: "default", Name: "conformance"}

// Run runs the contract tests.
func Run(t *testing.T, s Suite) {
	t.Run("start, status, list", func(t *testing.T) {
		d := open(t, s)
		st, err := d.Start(t.Context(), pod, s.Long, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Running || st.ID != (runtime.ContainerID{PodUID: pod.UID, Name: s.Long.Name}) || st.Pod != pod || st.StartedAt.IsZero() {
			t.Fatalf("start status = %+v", st)
		}
		got, err := d.Status(st.ID)
		if err != nil || !got.Running || got.ID != st.ID {
			t.Fatalf("status = %+v, %v", got, err)
		}
		list, err := d.List()
		if err != nil || len(list) != 1 || list[0].ID != st.ID {
			t.Fatalf("list = %+v, %v; want the attempt once", list, err)
		}
		if _, err := d.Start(t.Context(), pod, s.Long, 0); !errors.Is(err, runtime.ErrExists) {
			t.Fatalf("duplicate start = %v, want ErrExists", err)
		}
		unknown := runtime.ContainerID{PodUID: pod.UID, Name: "nope"}
		if _, err := d.Status(unknown); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("status of unknown = %v, want ErrNotFound", err)
		}
		if _, err := d.Stop(t.Context(), unknown, 0); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("stop of unknown = %v, want ErrNotFound", err)
		}
		if _, err := d.Logs(t.Context(), unknown, false); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("logs of unknown = %v, want ErrNotFound", err)
		}
	})

	t.Run("stop, event, remove", func(t *testing.T) {
		d := open(t, s)
		st, err := d.Start(t.Context(), pod, s.Long, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Remove(st.ID); !errors.Is(err, runtime.ErrRunning) {
			t.Fatalf("remove running = %v, want ErrRunning", err)
		}
		stopped, err := d.Stop(t.Context(), st.ID, wait)
		if err != nil || stopped.Running || stopped.Reason == "" || stopped.FinishedAt.IsZero() {
			t.Fatalf("stop = %+v, %v", stopped, err)
		}
		if again, err := d.Stop(t.Context(), st.ID, wait); err != nil || again.Running || again.ExitCode != stopped.ExitCode {
			t.Fatalf("second stop = %+v, %v; want %+v", again, err, stopped)
		}
		ev := NextEvent(t, d, wait)
		if ev.ID != st.ID || ev.Running {
			t.Fatalf("event = %+v", ev)
		}
		if _, err := d.Exec(t.Context(), st.ID, []string{"true"}, nil, io.Discard, io.Discard); !errors.Is(err, runtime.ErrNotRunning) {
			t.Fatalf("exec in exited = %v, want ErrNotRunning", err)
		}
		if r, err := d.Logs(t.Context(), st.ID, true); err != nil {
			t.Fatalf("logs of exited: %v", err)
		} else if _, err := io.ReadAll(r); err != nil { // follow ends: the attempt exited
			t.Fatalf("follow logs of exited: %v", err)
		} else {
			r.Close()
		}
		if err := d.Remove(st.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Status(st.ID); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("status after remove = %v, want ErrNotFound", err)
		}
		if err := d.Remove(st.ID); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("second remove = %v, want ErrNotFound", err)
		}
	})

	t.Run("remove pod", func(t *testing.T) {
		d := open(t, s)
		other := runtime.Pod{UID: "other-uid", Namespace: "default", Name: "other"}
		for _, p := range []runtime.Pod{pod, other} {
			if _, err := d.Start(t.Context(), p, s.Long, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.RemovePod(t.Context(), pod.UID, wait); err != nil {
			t.Fatal(err)
		}
		list, err := d.List()
		if err != nil || len(list) != 1 || list[0].ID.PodUID != other.UID {
			t.Fatalf("list = %+v, %v; want only the other pod", list, err)
		}
		if _, err := d.Stop(t.Context(), list[0].ID, wait); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pod network", func(t *testing.T) {
		d := open(t, s)
		pn, ok := d.(runtime.PodNetwork)
		if !ok {
			t.Skip("the driver gives pods the node's network")
		}
		ip, err := pn.SetupPodNetwork(t.Context(), pod)
		if err != nil || !ip.IsValid() {
			t.Fatalf("setup = %v, %v", ip, err)
		}
		if _, err := d.Start(t.Context(), pod, s.Long, 0); err != nil {
			t.Fatal(err)
		}
		if again, err := pn.SetupPodNetwork(t.Context(), pod); err != nil || again != ip {
			t.Fatalf("second setup = %v, %v; want %v (idempotent)", again, err, ip)
		}
		other := runtime.Pod{UID: "other-uid", Namespace: "default", Name: "other"}
		if oip, err := pn.SetupPodNetwork(t.Context(), other); err != nil || oip == ip {
			t.Fatalf("other pod's setup = %v, %v; want an address of its own", oip, err)
		}
		for _, uid := range []string{pod.UID, other.UID} {
			if err := d.RemovePod(t.Context(), uid, wait); err != nil {
				t.Fatal(err)
			}
		}
		if list, err := d.List(); err != nil || len(list) != 0 {
			t.Fatalf("list = %+v, %v; want none", list, err)
		}
	})

	t.Run("close", func(t *testing.T) {
		d := s.New(t)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if _, ok := <-d.Events(); ok {
			t.Fatal("events still open after Close")
		}
		if _, err := d.List(); !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("list after close = %v, want ErrClosed", err)
		}
		if _, err := d.Start(t.Context(), pod, s.Long, 0); !errors.Is(err, runtime.ErrClosed) {
			t.Fatalf("start after close = %v, want ErrClosed", err)
		}
	})

	t.Run("concurrent starts and stops", func(t *testing.T) {
		d := open(t, s)
		const n = 8
		errs := make(chan error, n)
		for i := range n {
			go func() {
				c := s.Long
				c.Name = s.Long.Name + "-" + string(rune('a'+i))
				st, err := d.Start(context.Background(), pod, c, 0)
				if err == nil {
					_, err = d.Stop(context.Background(), st.ID, wait)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		list, err := d.List()
		if err != nil || len(list) != n || slices.ContainsFunc(list, func(s runtime.Status) bool { return s.Running }) {
			t.Fatalf("list = %+v, %v; want %d exited", list, err, n)
		}
	})
}

func open(t *testing.T, s Suite) runtime.Driver {
	t.Helper()
	d := s.New(t)
	t.Cleanup(func() {
		if list, err := d.List(); err == nil {
			for _, st := range list {
				if st.Running {
					_, _ = d.Stop(context.Background(), st.ID, 0)
				}
			}
		}
		d.Close()
	})
	return d
}

// NextEvent returns the next status on d's Events, failing t if none comes
// within timeout or Events is closed.
func NextEvent(t *testing.T, d runtime.Driver, timeout time.Duration) runtime.Status {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case st, ok := <-d.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return st
	case <-timer.C:
		t.Fatal("no exit event")
	}
	return runtime.Status{}
}
