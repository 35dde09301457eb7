package containerd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/containerd/containerdtest"
	"github.com/shoal-dev/shoal/agent/runtime/runtimetest"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

var testPod = runtime.Pod{UID: "uid-1", Namespace: "default", Name: "web"}

func TestContract(t *testing.T) {
	requireDaemon(t)
	runtimetest.Run(t, runtimetest.Suite{
		New: func(t *testing.T) runtime.Driver {
			d, err := New(testConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Long: testapp("app", "sleep"),
	})
}

// TestPodNetwork: the containers of a pod share one network namespace with
// an address from the pod CIDR, reachable from the node; the pod's
// resolv.conf is the container's /etc/resolv.conf.
func TestPodNetwork(t *testing.T) {
	d, cfg := newDriver(t)
	ip, err := d.SetupPodNetwork(t.Context(), testPod)
	if err != nil {
		t.Fatal(err)
	}
	if !netip.MustParsePrefix(cfg.PodCIDR).Contains(ip) {
		t.Fatalf("pod ip %s not in %s", ip, cfg.PodCIDR)
	}
	if again, err := d.SetupPodNetwork(t.Context(), testPod); err != nil || again != ip {
		t.Fatalf("second setup = %s, %v; want %s", again, err, ip)
	}

	server := testapp("server", "serve", "--port", "8080")
	server.Env = []string{"POD_NAME=web"}
	srv, err := d.Start(t.Context(), testPod, server, 0)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := d.Start(t.Context(), testPod, testapp("client", "sleep"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// From the other container, over localhost.
	waitfor.Cond(t, wait, "client reaching server on localhost", func() (bool, string) {
		var out bytes.Buffer
		code, err := d.Exec(t.Context(), cli.ID, []string{"/shoal-testapp", "get", "http://127.0.0.1:8080/"}, nil, &out, &out)
		return err == nil && code == 0 && strings.Contains(out.String(), `"web"`), out.String()
	})
	// From the node, at the pod's IP.
	resp, err := http.Get("http://" + ip.String() + ":8080/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"hostname":"web"`) {
		t.Fatalf("GET from the node = %s; want hostname web", body)
	}

	// The spec's ResolvConf at /etc/resolv.conf.
	print := testapp("print", "print", "hello")
	print.Env = []string{"PRINT_RESOLV=1"}
	print.ResolvConf = []byte("nameserver 10.96.0.10\nsearch default.svc.cluster.local\n")
	p, err := d.Start(t.Context(), testPod, print, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, d, p.ID); st.ExitCode != 0 || st.Reason != runtime.ReasonCompleted {
		t.Fatalf("print exited %+v", st)
	}
	if log := readLog(t, d, p.ID); !strings.Contains(log, "resolv.conf: nameserver 10.96.0.10") {
		t.Fatalf("print log = %q; want the pod's resolv.conf", log)
	}

	for _, id := range []runtime.ContainerID{srv.ID, cli.ID} {
		if _, err := d.Stop(t.Context(), id, wait); err != nil {
			t.Fatal(err)
		}
	}
	if log := readLog(t, d, srv.ID); !strings.Contains(log, "shutting down") {
		t.Fatalf("server log = %q; want a graceful shutdown on SIGTERM", log)
	}
	if err := d.RemovePod(t.Context(), testPod.UID, wait); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.files.Pod(testPod.UID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pod dir after RemovePod: %v", err)
	}
	leases, _ := filepath.Glob(filepath.Join(cfg.Dir, "cni", "ipam", cfg.Network, "10.*"))
	if len(leases) != 0 {
		t.Fatalf("ip leases after RemovePod: %v", leases)
	}
}

func TestOOMKilled(t *testing.T) {
	d, _ := newDriver(t)
	c := runtime.ContainerSpec{Name: "hog", Image: containerdtest.TestAppImage, Command: []string{"/memhog"}, MemoryBytes: 32 << 20, CPUMillis: 500}
	st, err := d.Start(t.Context(), testPod, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, d)
	if ev.ID != st.ID || ev.Reason != runtime.ReasonOOMKilled || ev.ExitCode != 137 || ev.FinishedAt.IsZero() {
		t.Fatalf("event = %+v; want OOMKilled, 137", ev)
	}
	if got, _ := d.Status(st.ID); got.Reason != runtime.ReasonOOMKilled {
		t.Fatalf("status = %+v", got)
	}
}

func TestExitCodesAndExec(t *testing.T) {
	d, _ := newDriver(t)
	crash, err := d.Start(t.Context(), testPod, testapp("crash", "crash-after", "10ms", "--code", "3"), 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, d)
	if ev.ID != crash.ID || ev.ExitCode != 3 || ev.Reason != runtime.ReasonError {
		t.Fatalf("event = %+v; want exit code 3, Error", ev)
	}

	app, err := d.Start(t.Context(), testPod, testapp("app", "sleep"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code, err := d.Exec(t.Context(), app.ID, []string{"/shoal-testapp", "print", "from-exec"}, strings.NewReader("ignored"), &out, &errOut)
	if err != nil || code != 0 || !strings.Contains(out.String(), "from-exec") {
		t.Fatalf("exec = %d, %v, %q %q", code, err, out.String(), errOut.String())
	}
	if code, err := d.Exec(t.Context(), app.ID, []string{"/shoal-testapp", "crash-after", "1ms", "--code", "7"}, nil, io.Discard, io.Discard); err != nil || code != 7 {
		t.Fatalf("exec exit = %d, %v; want 7", code, err)
	}
	if _, err := d.Exec(t.Context(), app.ID, []string{"/no/such/binary"}, nil, io.Discard, io.Discard); err == nil {
		t.Fatal("exec of a missing binary succeeded")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := d.Exec(ctx, app.ID, []string{"/shoal-testapp", "sleep"}, nil, io.Discard, io.Discard); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec past its context = %v", err)
	}
	// sleep exits 0 on SIGTERM.
	st, err := d.Stop(t.Context(), app.ID, wait)
	if err != nil || st.ExitCode != 0 || st.Reason != runtime.ReasonCompleted {
		t.Fatalf("stop = %+v, %v", st, err)
	}
}

// TestReadoption: a new driver finds the running attempt (same pid, logs,
// exec, stop), the one that exited while no driver ran (its real exit
// code, not on Events), and the pod's network.
func TestReadoption(t *testing.T) {
	cfg := testConfig(t)
	d1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := d1.SetupPodNetwork(t.Context(), testPod)
	if err != nil {
		t.Fatal(err)
	}
	long, err := d1.Start(t.Context(), testPod, testapp("long", "sleep"), 0)
	if err != nil {
		t.Fatal(err)
	}
	short, err := d1.Start(t.Context(), testPod, testapp("short", "crash-after", "300ms", "--code", "4"), 0)
	if err != nil {
		t.Fatal(err)
	}
	d1.Close()

	// short exits while no driver watches.
	c, ctx := ctrClient(t, cfg)
	waitfor.Cond(t, wait, "short's task to stop", func() (bool, string) {
		ctr, err := c.LoadContainer(ctx, containerdID(short.ID))
		if err != nil {
			return false, err.Error()
		}
		task, err := ctr.Task(ctx, nil)
		if err != nil {
			return false, err.Error()
		}
		s, err := task.Status(ctx)
		return err == nil && s.Status == client.Stopped, string(s.Status)
	})

	d2 := openDriver(t, cfg)
	list, err := d2.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	got, _ := d2.Status(long.ID)
	if !got.Running || got.PID != long.PID || !got.StartedAt.Equal(long.StartedAt) || got.Pod != testPod {
		t.Fatalf("long after re-adoption = %+v; started as %+v", got, long)
	}
	got, _ = d2.Status(short.ID)
	if got.Running || got.ExitCode != 4 || got.Reason != runtime.ReasonError {
		t.Fatalf("short after re-adoption = %+v; want exit code 4", got)
	}
	if again, err := d2.SetupPodNetwork(t.Context(), testPod); err != nil || again != ip {
		t.Fatalf("pod network after re-adoption = %s, %v; want %s", again, err, ip)
	}
	var out bytes.Buffer
	if code, err := d2.Exec(t.Context(), long.ID, []string{"/shoal-testapp", "print", "again"}, nil, &out, io.Discard); err != nil || code != 0 {
		t.Fatalf("exec after re-adoption = %d, %v", code, err)
	}
	if log := readLog(t, d2, short.ID); !strings.Contains(log, "exiting with code 4") {
		t.Fatalf("short's log = %q", log)
	}
	st, err := d2.Stop(t.Context(), long.ID, wait)
	if err != nil || st.Running || st.ExitCode != 0 {
		t.Fatalf("stop after re-adoption = %+v, %v", st, err)
	}
	if ev := nextEvent(t, d2); ev.ID != long.ID {
		t.Fatalf("event = %+v; want long's exit (short's exit is not an event)", ev)
	}

	// A third driver reads the recorded exits from the labels alone.
	d2.Close()
	d3 := openDriver(t, cfg)
	got, _ = d3.Status(long.ID)
	if got.Running || got.ExitCode != st.ExitCode || !got.FinishedAt.Equal(st.FinishedAt) {
		t.Fatalf("long in a third driver = %+v; want %+v", got, st)
	}
}

// TestMissingImage: a start that fails leaves no container, snapshot,
// network namespace or address behind, and says why.
func TestMissingImage(t *testing.T) {
	d, cfg := newDriver(t)
	c, ctx := ctrClient(t, cfg)
	tests := []struct {
		name string
		spec runtime.ContainerSpec
		want error
		text string
	}{
		{"not pullable", runtime.ContainerSpec{Name: "a", Image: "127.0.0.1:1/shoal/nonexistent:v1", Command: []string{"/x"}}, runtime.ErrImagePull, "127.0.0.1:1/shoal/nonexistent:v1"},
		{"never pulled", runtime.ContainerSpec{Name: "a", Image: "localhost/nonexistent:v1", ImagePullPolicy: runtime.PullNever}, runtime.ErrImagePull, "Never"},
		{"no such binary", runtime.ContainerSpec{Name: "a", Image: containerdtest.TestAppImage, Command: []string{"/no/such/binary"}}, nil, "/no/such/binary"},
		{"bad pull policy", runtime.ContainerSpec{Name: "a", Image: containerdtest.TestAppImage, ImagePullPolicy: "Sometimes"}, nil, "Sometimes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Start(t.Context(), testPod, tt.spec, 0)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("start = %v; want an error wrapping %v that names %q", err, tt.want, tt.text)
			}
			t.Log(err)
			if list, _ := d.List(); len(list) != 0 {
				t.Fatalf("list = %+v", list)
			}
			if ctrs, err := c.Containers(ctx); err != nil || len(ctrs) != 0 {
				t.Fatalf("containers = %d, %v", len(ctrs), err)
			}
			active := 0
			err = c.SnapshotService(cfg.Snapshotter).Walk(ctx, func(_ context.Context, i snapshots.Info) error {
				if i.Kind != snapshots.KindCommitted {
					active++
				}
				return nil
			})
			if err != nil || active != 0 {
				t.Fatalf("active snapshots = %d, %v", active, err)
			}
			for _, f := range []string{d.netnsPath(testPod.UID), d.podRecordPath(testPod.UID)} {
				if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s after a failed start: %v", f, err)
				}
			}
			if _, err := d.Start(t.Context(), testPod, tt.spec, 0); err == nil {
				t.Fatal("second start succeeded") // the same attempt may be retried
			}
		})
	}
}

func TestImportImage(t *testing.T) {
	d, cfg := newDriver(t)
	c, ctx := ctrClient(t, cfg)
	good, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	// Synchronously: until garbage collection has run, the namespace still
	// holds the blobs, and an import skips (does not check) blobs it holds.
	if err := c.ImageService().Delete(ctx, containerdtest.TestAppImage, images.SynchronousDelete()); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff // inside the layer, the biggest blob
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated", good[:len(good)/2]},
		{"flipped byte", flipped},
		{"not a tar", []byte("hello, not an archive")},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, err := d.ImportImage(t.Context(), bytes.NewReader(tt.data))
			if err == nil {
				t.Fatalf("import = %v; want an error", names)
			}
			if imgs, err := c.ImageService().List(ctx); err != nil || len(imgs) != 0 {
				t.Fatalf("images after a failed import = %v, %v", imgs, err)
			}
		})
	}
	names, err := d.ImportImage(t.Context(), bytes.NewReader(good))
	if err != nil || len(names) != 1 || names[0] != containerdtest.TestAppImage {
		t.Fatalf("import = %v, %v", names, err)
	}
	st, err := d.Start(t.Context(), testPod, testapp("app", "print", "imported"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, d, st.ID); st.ExitCode != 0 {
		t.Fatalf("exit = %+v", st)
	}
	if _, err := c.GetImage(ctx, "docker.io/library/nonexistent:latest"); !errdefs.IsNotFound(err) {
		t.Fatalf("get of a missing image = %v", err)
	}
}

func TestStopGraceThenKill(t *testing.T) {
	d, _ := newDriver(t)
	// memhog ignores SIGTERM.
	st, err := d.Start(t.Context(), testPod, runtime.ContainerSpec{Name: "stubborn", Image: containerdtest.TestAppImage, Command: []string{"/memhog", "1"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := d.Stop(t.Context(), st.ID, 300*time.Millisecond)
	if err != nil || got.Running || got.ExitCode != 128+int(syscall.SIGKILL) || got.Message != "killed by signal 9" {
		t.Fatalf("stop = %+v, %v; want SIGKILL after the grace period", got, err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("stop took %s; want the grace period first", el)
	}
}
