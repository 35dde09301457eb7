// Package layout is where the file-based drivers (process, containerd)
// keep a pod's and a container attempt's files under their Config.Dir, and
// which pod uids and container names may become directories there:
//
//	Dir/pods/<pod uid>/                    the pod's directory
//	Dir/pods/<pod uid>/resolv.conf         the pod's resolv.conf
//	Dir/pods/<pod uid>/<container>/        the container's directory
//	        <attempt>.log, <attempt>.log.1 stdout and stderr of the attempt
//
//	Dir/lock                               flock: one driver per Dir
//
// Each driver adds files of its own (see its doc).
package layout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// Dir is a driver's Config.Dir.
type Dir string

// Claim creates Dir/pods and the directories in also, then takes
// Dir/lock, so that no other driver uses Dir while the returned file is
// open. The lock goes with the process (and the fd is close-on-exec, so
// containers do not inherit it).
func (d Dir) Claim(also ...string) (*os.File, error) {
	for _, dir := range append([]string{d.Pods()}, also...) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	lock, err := os.OpenFile(filepath.Join(string(d), "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another driver", string(d))
		}
		return nil, fmt.Errorf("lock %s: %w", string(d), err)
	}
	return lock, nil
}

// Pods is the directory of all pods' directories.
func (d Dir) Pods() string { return filepath.Join(string(d), "pods") }

// Pod is the pod's directory.
func (d Dir) Pod(uid string) string { return filepath.Join(d.Pods(), uid) }

// Container is the directory of the container's attempts.
func (d Dir) Container(id runtime.ContainerID) string {
	return filepath.Join(d.Pod(id.PodUID), id.Name)
}

// Attempt is the attempt's file with the given suffix (".log", ".json").
func (d Dir) Attempt(id runtime.ContainerID, suffix string) string {
	return filepath.Join(d.Container(id), strconv.Itoa(id.Attempt)+suffix)
}

// Log is the attempt's log; its rotated part is Log+".1".
func (d Dir) Log(id runtime.ContainerID) string { return d.Attempt(id, ".log") }

// ResolvConf is the pod's resolv.conf.
func (d Dir) ResolvConf(uid string) string { return filepath.Join(d.Pod(uid), "resolv.conf") }

// ValidName reports whether s can be a single path element of ours (a pod
// uid or a container name).
func ValidName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// CheckID fails unless the attempt can name its files.
func CheckID(id runtime.ContainerID) error {
	switch {
	case !ValidName(id.PodUID):
		return fmt.Errorf("container %s: pod uid %q is not a valid name", id, id.PodUID)
	case !ValidName(id.Name):
		return fmt.Errorf("container %s: name %q is not a valid name", id, id.Name)
	case id.Attempt < 0:
		return fmt.Errorf("container %s: attempt %d is negative", id, id.Attempt)
	}
	return nil
}
