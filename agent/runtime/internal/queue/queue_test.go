package queue

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/shoal-dev/shoal/agent/runtime"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestQueue(t *testing.T) {
	stop := make(chan struct{})
	q := New(stop)
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run()
	}()
	// Push never blocks, however many are queued with nobody reading.
	const n = 1000
	for i := range n {
		q.Push(runtime.Status{ExitCode: i})
	}
	for i := range n {
		if st := <-q.Out(); st.ExitCode != i {
			t.Fatalf("event %d has code %d: out of order", i, st.ExitCode)
		}
	}
	q.Push(runtime.Status{})
	close(stop)
	<-done
	for range q.Out() { // drained or dropped, but closed
	}
}
