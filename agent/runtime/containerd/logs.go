package containerd

// The log reader is the process driver's (agent/runtime/process/logs.go),
// copied: both drivers keep logs in the same layout, so Logs behaves the
// same. A shared package under agent/runtime/internal would remove the copy.

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// logPoll is how often a following reader looks for new bytes.
const logPoll = 100 * time.Millisecond

// Logs streams the attempt's log: the rotated part (<attempt>.log.1) if
// any, then the current file. With follow it keeps tailing, across
// rotations, until ctx ends (the reader fails with ctx's cause), the driver
// is closed (runtime.ErrClosed), or the attempt has exited and everything is
// read (io.EOF). Closing the reader stops it too.
func (d *Driver) Logs(ctx context.Context, id runtime.ContainerID, follow bool) (io.ReadCloser, error) {
	a, _, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	path := d.logPath(id)
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pr, pw := io.Pipe()
	t := &tailer{a: a, path: path, cur: cur, buf: make([]byte, 32<<10)}
	if !d.goOwned(func() { d.streamLog(ctx, t, follow, pw) }) {
		t.close()
		return nil, runtime.ErrClosed
	}
	return pr, nil
}

func (d *Driver) streamLog(ctx context.Context, t *tailer, follow bool, pw *io.PipeWriter) {
	defer t.close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	unlink := context.AfterFunc(d.ctx, func() { cancel(runtime.ErrClosed) })
	defer unlink()
	// A Write blocked on a reader that neither reads nor closes ends here.
	unblock := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	defer unblock()
	pw.CloseWithError(t.stream(ctx, follow, pw)) // nil: io.EOF; never overwritten
}

// tailer reads one attempt's log, following copy-truncate rotations: when
// <attempt>.log.1 is a new file, it holds the bytes the current file had at
// rotation, so the reader finishes it from its own offset and goes on with
// the current file from 0.
type tailer struct {
	a    *attempt
	path string
	cur  *os.File // nil if there was no log file
	off  int64    // next byte of cur to read
	old  *os.File // a rotated copy being drained, positioned
	seen os.FileInfo
	buf  []byte
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
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	for {
		// Read done before draining: whatever the process wrote is in the
		// file by the time its exit is recorded.
		exited := isDone(t.a.done)
		if err := t.drain(w); err != nil {
			return err
		}
		if !follow || exited {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.a.done:
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
		t.a.logMu.RLock()
		t.checkRotation()
		var n int
		var err error
		if t.old == nil {
			n, err = t.cur.ReadAt(t.buf, t.off)
		}
		t.a.logMu.RUnlock()
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

// checkRotation opens a new <attempt>.log.1, if there is one, positioned at
// the offset read so far. Called with logMu held for reading.
func (t *tailer) checkRotation() {
	f, err := os.Open(t.path + ".1")
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
