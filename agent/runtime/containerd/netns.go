package containerd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	goruntime "runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// newNetNS creates a network namespace and bind-mounts it at path (which
// must not exist), so it lives without any process in it: CNI DEL works
// whether or not the pod's containers still run.
//
// The namespace is made by unshare on a locked OS thread that then goes
// back to the host's namespace. If going back fails, the thread stays
// locked and dies with its goroutine, so no other goroutine runs in the
// pod's namespace.
func newNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		self := "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"
		host, err := os.Open(self)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		defer host.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		mountErr := unix.Mount(self, path, "none", unix.MS_BIND, "")
		if err := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(mountErr, fmt.Errorf("return to the host network namespace: %w", err))
			return // the thread stays locked and is destroyed
		}
		goruntime.UnlockOSThread()
		if mountErr != nil {
			mountErr = fmt.Errorf("bind-mount: %w", mountErr)
		}
		errc <- mountErr
	}()
	if err := <-errc; err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

// isNetNS tells whether path is a mounted namespace (after a reboot the
// file is there but the mount is not).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// removeNetNS unmounts and deletes the namespace's file; the namespace
// itself goes when nothing holds it. A missing file is not an error.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}
