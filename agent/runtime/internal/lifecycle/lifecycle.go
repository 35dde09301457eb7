// Package lifecycle is what a runtime driver owns besides its containers:
// a context that Close cancels with runtime.ErrClosed, the goroutines that
// Close waits for, and the Events channel, fed in order by a queue that
// never blocks the code reporting exits and closed by Close.
package lifecycle

import (
	"context"
	"sync"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/queue"
)

// Life is one driver's. Create it with New.
type Life struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	events *queue.Queue
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	closed bool
}

// New starts the goroutine that feeds Events. Values of parent (a
// containerd namespace) are in Context.
func New(parent context.Context) *Life {
	l := &Life{}
	l.ctx, l.cancel = context.WithCancelCause(parent)
	l.events = queue.New(l.ctx.Done())
	l.Go(l.events.Run)
	return l
}

// Context is cancelled, with cause runtime.ErrClosed, by Close.
func (l *Life) Context() context.Context { return l.ctx }

// Done is Context().Done().
func (l *Life) Done() <-chan struct{} { return l.ctx.Done() }

// Closed returns runtime.ErrClosed once Close has begun, else nil.
func (l *Life) Closed() error {
	select {
	case <-l.ctx.Done():
		return runtime.ErrClosed
	default:
		return nil
	}
}

// Go runs f on a goroutine that Close waits for; false (f not run) if
// Close has begun.
func (l *Life) Go(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// Events is the driver's Events channel.
func (l *Life) Events() <-chan runtime.Status { return l.events.Out() }

// Emit queues st for Events; it never blocks.
func (l *Life) Emit(st runtime.Status) { l.events.Push(st) }

// Close cancels Context, waits for every goroutine of Go (Events is then
// closed; statuses still queued are dropped) and calls then, which
// releases what the driver holds. Later calls return once the first one
// has finished.
func (l *Life) Close(then func()) {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.cancel(runtime.ErrClosed)
		l.wg.Wait()
		if then != nil {
			then()
		}
	})
}
