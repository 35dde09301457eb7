package logfile

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// poll is how often a following reader looks for new bytes.
const poll = 100 * time.Millisecond

// Owner is the driver a reader belongs to.
type Owner interface {
	// Go runs the reader's goroutine so that the driver's Close waits for
	// it; false if the driver is closed.
	Go(f func()) bool
	// Context ends when the driver closes.
	Context() context.Context
}

// Open streams the log (Driver.Logs): the rotated part (<log>.1) if any,
// then the current file. With follow it keeps tailing, across rotations,
// until ctx ends (the reader fails with ctx's cause), the owner closes
// (runtime.ErrClosed), or exited is closed and everything is read
// (io.EOF). exited must be closed only once whatever the attempt wrote is
// in the file. Closing the reader stops it too.
func (l *Log) Open(ctx context.Context, o Owner, exited <-chan struct{}, follow bool) (io.ReadCloser, error) {
	cur, err := os.Open(l.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pr, pw := io.Pipe()
	t := &tailer{l: l, exited: exited, cur: cur, buf: make([]byte, 32<<10)}
	if !o.Go(func() { t.run(ctx, o.Context(), follow, pw) }) {
		t.close()
		return nil, runtime.ErrClosed
	}
	return pr, nil
}

func (t *tailer) run(ctx, owner context.Context, follow bool, pw *io.PipeWriter) {
	defer t.close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	unlink := context.AfterFunc(owner, func() { cancel(runtime.ErrClosed) })
	defer unlink()
	// A Write blocked on a reader that neither reads nor closes ends here.
	unblock := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	defer unblock()
	pw.CloseWithError(t.stream(ctx, follow, pw)) // nil: io.EOF; never overwritten
}

// tailer reads one attempt's log, following copy-truncate rotations: when
// <log>.1 is a new file, it holds the bytes the current file had at
// rotation, so the reader finishes it from its own offset and goes on with
// the current file from 0.
type tailer struct {
	l      *Log
	exited <-chan struct{}
	cur    *os.File // nil if there was no log file
	off    int64    // next byte of cur to read
	old    *os.File // a rotated copy being drained, positioned
	seen   os.FileInfo
	buf    []byte
}

func (t *tailer) close() {
	if t.cur != nil {
		t.cur.Close()
	}
	if t.old != nil {
		t.old.Close()
	}
}

func (t *tailer) stream(ctx context.Context, follow bool, w io.Writer) error {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		// Read exited before draining: whatever the attempt wrote is in
		// the file by the time its exit is recorded.
		exited := isClosed(t.exited)
		if err := t.drain(w); err != nil {
			return err
		}
		if !follow || exited {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.exited:
		case <-tick.C:
		}
	}
}

// drain writes everything readable now.
func (t *tailer) drain(w io.Writer) error {
	for {
		if t.old != nil {
			// A rotated copy never changes: no lock needed.
			_, err := io.CopyBuffer(w, onlyReader{t.old}, t.buf)
			t.old.Close()
			t.old = nil
			if err != nil {
				return err
			}
		}
		if t.cur == nil {
			return nil
		}
		t.l.mu.RLock()
		t.checkRotation()
		var n int
		var err error
		if t.old == nil {
			n, err = t.cur.ReadAt(t.buf, t.off)
		}
		t.l.mu.RUnlock()
		if t.old != nil {
			continue
		}
		if n > 0 {
			if _, werr := w.Write(t.buf[:n]); werr != nil {
				return werr
			}
			t.off += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// checkRotation opens a new <log>.1, if there is one, positioned at the
// offset read so far. Called with the log's lock held for reading.
func (t *tailer) checkRotation() {
	f, err := os.Open(t.l.path + ".1")
	if err != nil {
		return
	}
	fi, err := f.Stat()
	if err != nil || (t.seen != nil && os.SameFile(t.seen, fi)) {
		f.Close()
		return
	}
	t.seen = fi
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		f.Close()
		return
	}
	t.old, t.off = f, 0
}

// onlyReader hides *os.File's WriterTo so CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
