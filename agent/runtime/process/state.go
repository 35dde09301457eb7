package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/atomicfile"
)

// record is an attempt's state as kept in <attempt>.json. It carries what
// a new driver needs after an agent restart: identity, the process, and
// what Exec needs (env, working dir). The file is mode 0600: Env may hold
// secrets.
type record struct {
	Pod       runtime.Pod `json:"pod"`
	Container string      `json:"container"`
	Attempt   int         `json:"attempt"`
	Image     string      `json:"image,omitempty"`
	PID       int         `json:"pid"`
	// ProcStart is field 22 of /proc/<pid>/stat at start, to tell the
	// process from a later one that reused its pid. 0 if it was not read.
	ProcStart uint64    `json:"procStart"`
	StartedAt time.Time `json:"startedAt"`
	Env       []string  `json:"env"`
	WorkDir   string    `json:"workDir"`

	Exited     bool      `json:"exited"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
}

func (r *record) id() runtime.ContainerID {
	return runtime.ContainerID{PodUID: r.Pod.UID, Name: r.Container, Attempt: r.Attempt}
}

func (r *record) status() runtime.Status {
	return runtime.Status{
		ID:         r.id(),
		Pod:        r.Pod,
		Running:    !r.Exited,
		PID:        r.PID,
		StartedAt:  r.StartedAt,
		FinishedAt: r.FinishedAt,
		ExitCode:   r.ExitCode,
		Reason:     r.Reason,
		Message:    r.Message,
	}
}

func (d *Driver) statePath(id runtime.ContainerID) string { return d.files.Attempt(id, ".json") }

// writeRecord replaces the attempt's record atomically (tmp, fsync, rename).
func (d *Driver) writeRecord(r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(d.statePath(r.id()), append(b, '\n'), 0o600)
}

// loadRecords reads every attempt record under Dir/pods. Unreadable or
// inconsistent records are logged and skipped; leftover temporary files of
// an interrupted write are deleted.
func (d *Driver) loadRecords() ([]*record, error) {
	ctrDirs, err := filepath.Glob(filepath.Join(d.files.Pods(), "*", "*"))
	if err != nil {
		return nil, err
	}
	var recs []*record
	for _, dir := range ctrDirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			return nil, fmt.Errorf("scan %s: %w", dir, err)
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") && strings.Contains(name, ".json.tmp") {
				_ = os.Remove(filepath.Join(dir, name))
				continue
			}
			num, ok := strings.CutSuffix(name, ".json")
			if !ok || e.IsDir() {
				continue
			}
			attempt, err := strconv.Atoi(num)
			if err != nil || attempt < 0 || strconv.Itoa(attempt) != num {
				continue // not ours: the container's own file in its working dir
			}
			path := filepath.Join(dir, name)
			r, err := readRecord(path)
			if err != nil {
				d.log.Warn("skipping unreadable container record", "path", path, "err", err)
				continue
			}
			if r.Pod.UID != filepath.Base(filepath.Dir(dir)) || r.Container != filepath.Base(dir) || r.Attempt != attempt {
				d.log.Warn("skipping container record that does not match its path", "path", path)
				continue
			}
			recs = append(recs, r)
		}
	}
	return recs, nil
}

func readRecord(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.PID <= 0 && !r.Exited {
		return nil, errors.New("no pid")
	}
	return &r, nil
}
