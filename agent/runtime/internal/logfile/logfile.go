// Package logfile is a container attempt's log as the file-based drivers
// (process, containerd) keep it: one file that the container, or
// containerd's shim, appends to (O_APPEND); rotated by copy-truncate into
// <log>.1; read by readers that follow it across rotations.
package logfile

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Log is one attempt's log file. Its lock is held for writing by a
// rotation and by a removal, and for reading by readers, so a reader never
// sees a half-done copy-truncate.
type Log struct {
	path string
	mu   sync.RWMutex
}

// New returns the log at path; nothing is created.
func New(path string) *Log { return &Log{path: path} }

// Path is the current file; the rotated part is Path()+".1".
func (l *Log) Path() string { return l.path }

// Lock holds off rotations and readers until Unlock, for example while
// the directory of the log is deleted.
func (l *Log) Lock() { l.mu.Lock() }

// Unlock ends Lock.
func (l *Log) Unlock() { l.mu.Unlock() }

// Remove deletes the log, its rotated part and the files in also, once no
// rotation is under way. Files that do not exist are not an error.
func (l *Log) Remove(also ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, p := range append([]string{l.path, l.path + ".1"}, also...) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Rotator rotates, every interval until stop is closed, each log that
// running returns whose file is larger than maxBytes. Failures are logged.
func Rotator(stop <-chan struct{}, interval time.Duration, maxBytes int64, running func() []*Log, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for _, l := range running() {
			fi, err := os.Stat(l.path)
			if err != nil || fi.Size() <= maxBytes {
				continue
			}
			l.mu.Lock()
			err = rotate(l.path)
			l.mu.Unlock()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Warn("cannot rotate container log", "path", l.path, "err", err)
			}
		}
	}
}

// rotate copies path to path.1 (replaced atomically) and truncates path.
// The writer appends (O_APPEND), so after the truncate it writes at the
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
