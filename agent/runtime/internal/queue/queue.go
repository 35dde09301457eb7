// Package queue delivers a driver's exit events in order without ever
// blocking the code that produces them: an unbounded queue drained into a
// channel by one goroutine that the driver owns.
package queue

import (
	"sync"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// Queue is an unbounded FIFO of statuses feeding Out.
type Queue struct {
	out  chan runtime.Status
	stop <-chan struct{}

	mu    sync.Mutex
	items []runtime.Status
	wake  chan struct{}
}

// New returns a queue whose Run returns once stop is closed.
func New(stop <-chan struct{}) *Queue {
	return &Queue{out: make(chan runtime.Status), stop: stop, wake: make(chan struct{}, 1)}
}

// Out is the channel the queue feeds (Driver.Events).
func (q *Queue) Out() <-chan runtime.Status { return q.out }

// Push appends s; it never blocks.
func (q *Queue) Push(s runtime.Status) {
	q.mu.Lock()
	q.items = append(q.items, s)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run sends queued statuses on Out until stop is closed, then closes Out.
// Events still queued then are dropped: the driver is closing.
func (q *Queue) Run() {
	defer close(q.out)
	for {
		q.mu.Lock()
		var next runtime.Status
		have := len(q.items) > 0
		if have {
			next = q.items[0]
		}
		q.mu.Unlock()
		if !have {
			select {
			case <-q.wake:
				continue
			case <-q.stop:
				return
			}
		}
		select {
		case q.out <- next:
			q.mu.Lock()
			q.items[0] = runtime.Status{}
			q.items = q.items[1:]
			q.mu.Unlock()
		case <-q.stop:
			return
		}
	}
}
