// Package containerdtest starts private containerd daemons for tests (the
// containerd driver's own and the e2e suite) and builds the images they
// run, without a registry.
//
// A Daemon has its own --root, --state and socket under a directory the
// caller gives (t.TempDir()) and a config that disables the CRI plugin and
// keeps the namespaces' content apart (content_sharing_policy "isolated":
// a blob one namespace holds is written and checked again when another
// fetches it, as between agents on different machines). Stop stops and
// cleans it: every task of every namespace it served is killed and
// deleted, containers go with their snapshots, then the daemon is stopped
// and the per-namespace cgroups and runc state it left on the host are
// removed. Several daemons on one host share /run/containerd (shim
// sockets, runc state) and the cgroup tree, so every test must use its own
// namespace (NewNamespace). Stop does not undo what a runtime driver did
// outside containerd (network namespace mounts, CNI leases, bridges):
// remove pods through the driver and the bridge with DeleteLink.
//
// Tests skip when containerd, runc or root are missing, unless the
// environment sets SHOAL_REQUIRE_CONTAINERD=1 (CI on a machine that has
// them): then they fail.
package containerdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"

	"github.com/shoal-dev/shoal/internal/ociimage"
)

// RequireEnv names the environment variable that turns a missing containerd
// from a skip into a failure.
const RequireEnv = "SHOAL_REQUIRE_CONTAINERD"

// TestAppImage is the name of the image of shoal-testapp that BuildImage
// and `make testimage` write; its entrypoint is /shoal-testapp.
const TestAppImage = "localhost/shoal-testapp:latest"

// startTimeout bounds how long Start waits for the daemon to serve.
const startTimeout = 30 * time.Second

// Available reports why a private daemon cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("containerd tests need root")
	}
	for _, bin := range []string{"containerd", "runc", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install containerd runc containernetworking-plugins)", bin)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		found := false
		for _, dir := range CNIBinDirs {
			if _, err := os.Stat(filepath.Join(dir, plugin)); err == nil {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("CNI plugin %s is not in %v (apt-get install containernetworking-plugins)", plugin, CNIBinDirs)
		}
	}
	return nil
}

// CNIBinDirs are where Available looks for the CNI plugins the containerd
// driver needs (its DefaultCNIBinDirs).
var CNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Require skips t when Available fails, or fails it when RequireEnv is 1.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but: %v", RequireEnv, err)
		}
		t.Skip(err)
	}
}

// Daemon is a private containerd process.
type Daemon struct {
	// Address is the daemon's gRPC socket.
	Address string
	// Dir holds root/, state/, the config and containerd.log.
	Dir string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	err  error         // the process's exit; read after done

	mu         sync.Mutex
	namespaces map[string]bool
	stopped    bool
}

// Start starts a daemon under dir (which should be empty) and waits until
// it serves. Call Stop when done.
func Start(ctx context.Context, dir string) (*Daemon, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d := &Daemon{
		Address:    filepath.Join(dir, "containerd.sock"),
		Dir:        dir,
		done:       make(chan struct{}),
		namespaces: map[string]bool{},
	}
	if len(d.Address) > 100 { // sun_path is 108 bytes, the ttrpc socket adds ".ttrpc"
		return nil, fmt.Errorf("containerd socket path %q is too long for a unix socket", d.Address)
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.Address, d.Address+".ttrpc", filepath.Join(dir, "opt"))
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	d.cmd = exec.Command("containerd", "--config", configPath, "--log-level", "info")
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	// Its own process group: a test's ^C does not reach it before Stop does.
	// Pdeathsig stops it when a test binary dies without Stop (a timeout).
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	if err := d.waitServing(ctx); err != nil {
		d.kill()
		return nil, fmt.Errorf("containerd did not start: %w; log:\n%s", err, d.Log())
	}
	return d, nil
}

func (d *Daemon) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c, err := client.New(d.Address, client.WithTimeout(startTimeout))
	if err != nil {
		return err
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.IsServing(ctx) // waits for the socket (WaitForReady)
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-d.done:
		cancel()
		<-errc
		return fmt.Errorf("containerd exited: %v", d.err)
	}
}

// StartT starts a daemon under t.TempDir() and stops it at cleanup; it
// skips (or fails, see Require) when containerd cannot run here.
func StartT(t testing.TB) *Daemon {
	t.Helper()
	Require(t)
	d, err := Start(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	return d
}

// Log returns what the daemon has logged so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "containerd.log"))
	return string(b)
}

// NewNamespace returns a fresh namespace name ("shoaltest-" and 8 hex
// digits) that Stop will clean. Namespaces are unique across daemons, as
// they must be (see the package doc).
func (d *Daemon) NewNamespace() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "shoaltest-" + hex.EncodeToString(b)
	d.mu.Lock()
	d.namespaces[ns] = true
	d.mu.Unlock()
	return ns
}

// Client returns a client of the daemon with ns as its default namespace;
// the caller closes it.
func (d *Daemon) Client(ns string) (*client.Client, error) {
	d.mu.Lock()
	d.namespaces[ns] = true
	d.mu.Unlock()
	return client.New(d.Address, client.WithDefaultNamespace(ns))
}

// Import imports an OCI archive into namespace ns and unpacks its images
// into the default snapshotter.
func (d *Daemon) Import(ctx context.Context, ns, archive string) error {
	c, err := d.Client(ns)
	if err != nil {
		return err
	}
	defer c.Close()
	return Import(namespaces.WithNamespace(ctx, ns), c, archive)
}

// Import imports an OCI archive through c (in ctx's namespace) and unpacks
// its images.
func Import(ctx context.Context, c *client.Client, archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	imgs, err := c.Import(ctx, f)
	if err != nil {
		return fmt.Errorf("import %s: %w", archive, err)
	}
	for _, i := range imgs {
		if err := client.NewImage(c, i).Unpack(ctx, ""); err != nil {
			return fmt.Errorf("unpack %s: %w", i.Name, err)
		}
	}
	return nil
}

// Stop cleans every namespace the daemon served (tasks killed, containers
// and snapshots, images and leases deleted), stops the daemon and removes
// the cgroups and runc state its namespaces left on the host. It is
// idempotent.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return nil
	}
	d.stopped = true
	d.mu.Unlock()
	var errs []error
	nss, err := d.clean()
	if err != nil {
		errs = append(errs, err)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(startTimeout):
		d.kill()
		errs = append(errs, errors.New("containerd did not stop on SIGTERM; killed"))
	}
	// Snapshots of containers whose cleanup failed may still be mounted.
	errs = append(errs, unmountUnder(d.Dir))
	for _, ns := range nss {
		removeNamespaceLeftovers(ns)
	}
	return errors.Join(errs...)
}

func (d *Daemon) kill() {
	_ = d.cmd.Process.Kill()
	<-d.done
}

// clean deletes everything in every namespace of the daemon and returns the
// namespaces it saw.
func (d *Daemon) clean() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(d.Address)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	listed, err := c.NamespaceService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	d.mu.Lock()
	for _, ns := range listed {
		d.namespaces[ns] = true
	}
	var nss []string
	for ns := range d.namespaces {
		nss = append(nss, ns)
	}
	d.mu.Unlock()
	var errs []error
	for _, ns := range nss {
		if err := cleanNamespace(namespaces.WithNamespace(ctx, ns), c); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
		}
	}
	return nss, errors.Join(errs...)
}

func cleanNamespace(ctx context.Context, c *client.Client) error {
	ctrs, err := c.Containers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ctr := range ctrs {
		if task, err := ctr.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete task %s: %w", ctr.ID(), err))
			}
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete container %s: %w", ctr.ID(), err))
		}
	}
	imgs, err := c.ImageService().List(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, img := range imgs {
		if err := c.ImageService().Delete(ctx, img.Name); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	ls, err := c.LeasesService().List(ctx)
	if err == nil {
		for _, l := range ls {
			_ = c.LeasesService().Delete(ctx, l)
		}
	}
	return errors.Join(errs...)
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mounts[i], err))
		}
	}
	return errors.Join(errs...)
}

// removeNamespaceLeftovers removes the namespace's parent cgroups (runc
// leaves /<ns> in every hierarchy) and runc's state directory. Both are
// empty once the namespace's tasks are deleted; rmdir fails harmlessly on
// anything that is not.
func removeNamespaceLeftovers(ns string) {
	if ns == "" || strings.Contains(ns, "/") {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ns))
	if fi, err := os.Stat(filepath.Join("/sys/fs/cgroup", ns)); err == nil && fi.IsDir() {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ns)) // cgroup v2
	}
	for _, dir := range dirs {
		_ = syscall.Rmdir(dir)
	}
	_ = syscall.Rmdir(filepath.Join("/run/containerd/runc", ns))
}

// BuildStatic builds the Go package pkg (an import path or a directory
// relative to the calling test's package) as a static binary at out.
func BuildStatic(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// BuildImage builds shoal-testapp, static, and writes an archive of the
// image TestAppImage at dir/shoal-testapp.oci.tar, with extra files (host
// path to path in the image) added to it. It returns the archive's path.
func BuildImage(ctx context.Context, dir string, extra map[string]string) (string, error) {
	bin := filepath.Join(dir, "shoal-testapp")
	if err := BuildStatic(ctx, "github.com/shoal-dev/shoal/cmd/shoal-testapp", bin); err != nil {
		return "", err
	}
	f, err := ociimage.FromFile(bin, "/shoal-testapp")
	if err != nil {
		return "", err
	}
	img := ociimage.Image{Name: TestAppImage, Files: []ociimage.File{f}, Entrypoint: []string{"/shoal-testapp"}}
	for host, inImage := range extra {
		f, err := ociimage.FromFile(host, inImage)
		if err != nil {
			return "", err
		}
		img.Files = append(img.Files, f)
	}
	out := filepath.Join(dir, "shoal-testapp.oci.tar")
	if err := ociimage.WriteFile(out, img); err != nil {
		return "", err
	}
	return out, nil
}

// DeleteLink deletes a network interface (a driver's bridge), if it
// exists.
func DeleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return netlink.LinkDel(l)
}
