package containerd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"go.uber.org/goleak"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/containerd/containerdtest"
	"github.com/shoal-dev/shoal/agent/runtime/runtimetest"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// One private containerd serves every test of the package; each driver
// gets its own namespace, directory, bridge and pod CIDR.
var (
	daemon  *containerdtest.Daemon
	archive string // the test image: shoal-testapp plus /memhog
	setup   error  // why the daemon or the image is missing
	// netSeq numbers the drivers' pod CIDRs, 10.244.<n>.0/24.
	netSeq atomic.Int32
)

const wait = 20 * time.Second

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shoal-containerd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if containerdtest.Available() == nil {
		ctx := context.Background()
		daemon, setup = containerdtest.Start(ctx, filepath.Join(dir, "d"))
		if setup == nil {
			hog := filepath.Join(dir, "memhog")
			if setup = containerdtest.BuildStatic(ctx, "./testdata/memhog", hog); setup == nil {
				archive, setup = containerdtest.BuildImage(ctx, dir, map[string]string{hog: "/memhog"})
			}
		}
	}
	code := m.Run()
	if daemon != nil {
		if err := daemon.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop containerd:", err)
			code = 1
		}
	}
	if code == 0 {
		// The drivers' goroutines must all have stopped.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// requireDaemon skips (or fails, see containerdtest.Require) without
// containerd, and fails if the shared daemon could not be set up.
func requireDaemon(t *testing.T) {
	t.Helper()
	containerdtest.Require(t)
	if setup != nil {
		t.Fatal(setup)
	}
}

// testConfig is a driver config of its own: directory, namespace (with
// the test image imported), bridge and pod CIDR. Its cleanup (which runs
// after every driver on it is closed) removes whatever the test left,
// through a fresh driver: that re-adopts and then RemovePods everything.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := emptyConfig(t)
	if err := daemon.Import(t.Context(), cfg.Namespace, archive); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// emptyConfig is testConfig with no image in the namespace.
func emptyConfig(t *testing.T) Config {
	t.Helper()
	requireDaemon(t)
	ns := daemon.NewNamespace()
	n := netSeq.Add(1)
	cfg := DefaultConfig()
	// Not t.TempDir(): subtest names put commas in it, and runc cannot
	// join a namespace at a path with a comma.
	dir, err := os.MkdirTemp("", "shoal-driver-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg.Dir = dir
	cfg.Address = daemon.Address
	cfg.Namespace = ns
	cfg.Bridge = "shl" + ns[len(ns)-8:]
	cfg.Network = "shoal-" + ns[len(ns)-8:]
	cfg.PodCIDR = fmt.Sprintf("10.244.%d.0/24", n%250)
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() { cleanup(t, cfg) })
	return cfg
}

func cleanup(t *testing.T, cfg Config) {
	d, err := New(cfg)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer d.Close()
	pods, _ := os.ReadDir(filepath.Join(cfg.Dir, "pods"))
	list, _ := d.List()
	uids := map[string]bool{}
	for _, p := range pods {
		uids[p.Name()] = true
	}
	for _, st := range list {
		uids[st.ID.PodUID] = true
	}
	for uid := range uids {
		if err := d.RemovePod(context.Background(), uid, 0); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if err := containerdtest.DeleteLink(cfg.Bridge); err != nil {
		t.Errorf("cleanup: delete bridge: %v", err)
	}
}

// newDriver opens a driver on a fresh testConfig, closed at cleanup.
func newDriver(t *testing.T) (*Driver, Config) {
	t.Helper()
	cfg := testConfig(t)
	return openDriver(t, cfg), cfg
}

func openDriver(t *testing.T, cfg Config) *Driver {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// testapp is a container of the test image running shoal-testapp args.
func testapp(name string, args ...string) runtime.ContainerSpec {
	return runtime.ContainerSpec{Name: name, Image: containerdtest.TestAppImage, Command: append([]string{"/shoal-testapp"}, args...)}
}

func nextEvent(t *testing.T, d runtime.Driver) runtime.Status {
	t.Helper()
	return runtimetest.NextEvent(t, d, wait)
}

// waitExit returns the attempt's status once it has exited.
func waitExit(t *testing.T, d *Driver, id runtime.ContainerID) runtime.Status {
	t.Helper()
	var st runtime.Status
	waitfor.Cond(t, wait, "exit of "+id.String(), func() (bool, string) {
		var err error
		st, err = d.Status(id)
		return err == nil && !st.Running, fmt.Sprintf("%+v, %v", st, err)
	})
	return st
}

func readLog(t *testing.T, d *Driver, id runtime.ContainerID) string {
	t.Helper()
	r, err := d.Logs(t.Context(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ctrClient is a containerd client in the driver's namespace, to look
// behind the driver's back.
func ctrClient(t *testing.T, cfg Config) (*client.Client, context.Context) {
	t.Helper()
	c, err := daemon.Client(cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, namespaces.WithNamespace(t.Context(), cfg.Namespace)
}
