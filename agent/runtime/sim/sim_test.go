package sim

import (
	"errors"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/runtimetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestContract(t *testing.T) {
	runtimetest.Run(t, runtimetest.Suite{
		New:  func(*testing.T) runtime.Driver { return New() },
		Long: runtime.ContainerSpec{Name: "app", Image: "example/app:1"},
	})
}

func TestSim(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := NewWithConfig(Config{Clock: func() time.Time { return now }})
	t.Cleanup(func() { d.Close() })
	pod := runtime.Pod{UID: "u1", Namespace: "ns", Name: "p"}

	a, err := d.Start(t.Context(), pod, runtime.ContainerSpec{Name: "a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Start(t.Context(), pod, runtime.ContainerSpec{Name: "b"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.PID == b.PID || a.PID < firstPID || !a.StartedAt.Equal(now) {
		t.Fatalf("starts = %+v, %+v", a, b)
	}

	tests := []struct {
		name       string
		id         runtime.ContainerID
		exit       func() error
		wantCode   int
		wantReason string
	}{
		{"Exit simulates a crash", a.ID, func() error { return d.Exit(a.ID, 2) }, 2, runtime.ReasonError},
		{"Stop completes", b.ID, func() error { _, err := d.Stop(t.Context(), b.ID, time.Minute); return err }, 0, runtime.ReasonCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, err := d.Exec(t.Context(), tt.id, []string{"x"}, nil, io.Discard, io.Discard); code != 0 || err != nil {
				t.Fatalf("exec = %d, %v", code, err)
			}
			if err := tt.exit(); err != nil {
				t.Fatal(err)
			}
			ev := <-d.Events()
			if ev.ID != tt.id || ev.Running || ev.ExitCode != tt.wantCode || ev.Reason != tt.wantReason || !ev.FinishedAt.Equal(now) {
				t.Fatalf("event = %+v", ev)
			}
			if err := d.Exit(tt.id, 1); !errors.Is(err, runtime.ErrNotRunning) {
				t.Fatalf("exit of exited = %v", err)
			}
		})
	}
}
