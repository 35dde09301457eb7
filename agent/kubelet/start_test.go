package kubelet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/sim"
	"github.com/shoal-dev/shoal/internal/waitfor"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// gateDriver is the sim driver whose Start of an image "gated" blocks until
// the test opens that pod's gate (whatever the context says: a driver call
// that outlives a cancel), whose Start of image "exits" returns an attempt
// that has already exited with code 3, and which records what the kubelet
// asks of it.
type gateDriver struct {
	*sim.Driver
	mu       sync.Mutex
	gates    map[string]chan struct{} // pod name -> closed when open
	open     bool                     // every gate is open (test cleanup)
	blocked  map[string]bool          // "pod/container" -> blocked in Start now
	maxBlock int                      // most Starts blocked at once
	starts   map[string]int           // pod name -> Start calls
	stops    map[string]int           // pod uid -> Stop calls
	removes  map[string]int           // pod uid -> RemovePod calls
	inflight map[string]int           // pod uid -> driver calls in flight (Start, SetupPodNetwork)
	raced    []string                 // RemovePod calls made while a call for the pod was in flight
	// afterExit, when set, runs in a Start of image "exits" between the
	// exit and the return.
	afterExit func(runtime.ContainerID)
}

func newGateDriver(s *sim.Driver) *gateDriver {
	return &gateDriver{Driver: s, gates: map[string]chan struct{}{}, blocked: map[string]bool{},
		starts: map[string]int{}, stops: map[string]int{}, removes: map[string]int{}, inflight: map[string]int{}}
}

// gate returns the pod's gate, with d.mu held.
func (d *gateDriver) gate(pod string) chan struct{} {
	g := d.gates[pod]
	if g == nil {
		g = make(chan struct{})
		if d.open {
			close(g)
		}
		d.gates[pod] = g
	}
	return g
}

// release opens the pod's gate: its blocked Starts return.
func (d *gateDriver) release(pod string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.gate(pod)
	select {
	case <-g:
	default:
		close(g)
	}
}

// releaseAll opens every gate, now and to come.
func (d *gateDriver) releaseAll() {
	d.mu.Lock()
	d.open = true
	var names []string
	for name := range d.gates {
		names = append(names, name)
	}
	d.mu.Unlock()
	for _, name := range names {
		d.release(name)
	}
}

// wait blocks on the pod's gate as key, counting the call in flight.
func (d *gateDriver) wait(pod runtime.Pod, key string) {
	d.mu.Lock()
	g := d.gate(pod.Name)
	d.blocked[key] = true
	n := 0
	for _, b := range d.blocked {
		if b {
			n++
		}
	}
	d.maxBlock = max(d.maxBlock, n)
	d.mu.Unlock()
	<-g
	d.mu.Lock()
	delete(d.blocked, key)
	d.mu.Unlock()
}

func (d *gateDriver) enter(uid string) {
	d.mu.Lock()
	d.inflight[uid]++
	d.mu.Unlock()
}

func (d *gateDriver) leave(uid string) {
	d.mu.Lock()
	d.inflight[uid]--
	d.mu.Unlock()
}

func (d *gateDriver) Start(ctx context.Context, pod runtime.Pod, c runtime.ContainerSpec, attempt int) (runtime.Status, error) {
	d.enter(pod.UID)
	defer d.leave(pod.UID)
	d.mu.Lock()
	d.starts[pod.Name]++
	d.mu.Unlock()
	if c.Image == "gated" {
		d.wait(pod, pod.Name+"/"+c.Name)
		// The start completes as if the cancel came too late.
		ctx = context.WithoutCancel(ctx)
	}
	st, err := d.Driver.Start(ctx, pod, c, attempt)
	if err == nil && c.Image == "exits" {
		// Its exit event may reach the kubelet before this result.
		_ = d.Driver.Exit(st.ID, 3)
		if d.afterExit != nil {
			d.afterExit(st.ID)
		}
	}
	return st, err
}

func (d *gateDriver) Stop(ctx context.Context, id runtime.ContainerID, grace time.Duration) (runtime.Status, error) {
	d.mu.Lock()
	d.stops[id.PodUID]++
	d.mu.Unlock()
	return d.Driver.Stop(ctx, id, grace)
}

func (d *gateDriver) RemovePod(ctx context.Context, uid string, grace time.Duration) error {
	d.mu.Lock()
	d.removes[uid]++
	if d.inflight[uid] > 0 {
		d.raced = append(d.raced, uid)
	}
	d.mu.Unlock()
	return d.Driver.RemovePod(ctx, uid, grace)
}

func (d *gateDriver) blockedNow() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var keys []string
	for k := range d.blocked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// gateNetDriver is gateDriver with a pod network whose setup for a pod
// named "net-*" blocks on the pod's gate.
type gateNetDriver struct {
	*gateDriver
	setups map[string]int // pod name -> SetupPodNetwork calls; guarded by gateDriver.mu
}

func (d *gateNetDriver) SetupPodNetwork(_ context.Context, pod runtime.Pod) (netip.Addr, error) {
	d.enter(pod.UID)
	defer d.leave(pod.UID)
	d.mu.Lock()
	d.setups[pod.Name]++
	d.mu.Unlock()
	if strings.HasPrefix(pod.Name, "net-") {
		d.wait(pod, pod.Name+"/network")
	}
	return netip.MustParseAddr("10.244.0.9"), nil
}

// startGated runs a kubelet on a gateDriver (with a pod network when net)
// allowing maxStarts starts at once. The test's cleanup opens every gate
// before it stops the kubelet.
func startGated(t *testing.T, maxStarts int, net bool) (*fixture, *gateDriver) {
	t.Helper()
	var gd *gateDriver
	f := startConfig(t, func(s *sim.Driver) runtime.Driver {
		gd = newGateDriver(s)
		if net {
			return &gateNetDriver{gateDriver: gd, setups: map[string]int{}}
		}
		return gd
	}, func(c *Config) { c.MaxParallelStarts = maxStarts })
	t.Cleanup(gd.releaseAll) // runs before startConfig's cleanup
	return f, gd
}

// imagePod is podObject with its container's image (and name) set, and
// more containers of that image when names has more than one.
func imagePod(t *testing.T, name, image string, policy corev1.RestartPolicy, names ...string) *pb.Object {
	t.Helper()
	var p corev1.Pod
	if err := object.Decode(podObject(t, name, policy, "n1"), &p); err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		names = []string{"app"}
	}
	proto := p.Spec.Containers[0]
	p.Spec.Containers = nil
	for _, n := range names {
		c := proto
		c.Name, c.Image = n, image
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	o, err := object.FromTyped("Pod", &p)
	if err != nil {
		t.Fatal(err)
	}
	o.ApiVersion = "v1"
	return o
}

func (f *fixture) delete(t *testing.T, name string) {
	t.Helper()
	if _, err := f.writer.Txn(context.Background(), &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: name}}}}); err != nil {
		t.Fatal(err)
	}
}

// kubeletPod reads the kubelet's own record of the pod: whether it has
// one, is removing it, and how many of its containers are starting.
func (f *fixture) kubeletPod(uid string) (known, removing bool, starting int) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	p := f.k.pods[uid]
	if p == nil {
		return false, false, 0
	}
	for _, c := range p.containers {
		if c.starting {
			starting++
		}
	}
	return true, p.removing, starting
}

func creating(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodPending || len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "ContainerCreating" {
			return false
		}
	}
	return true
}

func runningPod(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil {
			return false
		}
	}
	return true
}

// TestStartsRunConcurrently: two pods' starts (and two containers of one
// pod) are in the driver at once; while they are blocked the pods show
// ContainerCreating, and another pod runs, crashes, restarts and answers
// exec.
func TestStartsRunConcurrently(t *testing.T) {
	f, d := startGated(t, 8, false)
	f.put(t, imagePod(t, "a", "gated", corev1.RestartPolicyAlways))
	f.put(t, imagePod(t, "b", "gated", corev1.RestartPolicyAlways, "one", "two"))
	waitfor.Cond(t, 10*time.Second, "a and both containers of b blocked in Start at once", func() (bool, string) {
		got := d.blockedNow()
		return got == "a/app b/one b/two", got
	})
	f.waitPod(t, "a", "Pending, ContainerCreating", creating)
	f.waitPod(t, "b", "Pending, ContainerCreating", creating)

	f.put(t, imagePod(t, "c", "shoal-testapp", corev1.RestartPolicyAlways))
	c := f.waitPod(t, "c", "Running", runningPod)
	if err := f.driver.Exit(runtime.ContainerID{PodUID: string(c.UID), Name: "app", Attempt: 0}, 2); err != nil {
		t.Fatal(err)
	}
	f.waitPod(t, "c", "restarted", func(p corev1.Pod) bool { return runningPod(p) && restarts(p) == 1 })
	if code, err := f.k.Exec(t.Context(), "default", "c", "app", []string{"true"}, nil, func([]byte) error { return nil }, func([]byte) error { return nil }); err != nil || code != 0 {
		t.Fatalf("exec in c = %d, %v", code, err)
	}
	if got := d.blockedNow(); got != "a/app b/one b/two" {
		t.Fatalf("blocked in Start: %q; want a and b still", got)
	}
	if got, _ := f.pod("a"); !creating(got) {
		t.Fatalf("a while its Start is blocked: %+v", got.Status)
	}

	d.release("a")
	f.waitPod(t, "a", "Running", runningPod)
	d.release("b")
	b := f.waitPod(t, "b", "Running", runningPod)
	if _, _, starting := f.kubeletPod(string(b.UID)); starting != 0 {
		t.Fatalf("%d containers of b still starting", starting)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.starts["a"] != 1 || d.starts["b"] != 2 {
		t.Fatalf("Start calls %v; want one per container", d.starts)
	}
}

// TestStartsAreBounded: with MaxParallelStarts 2, a third pod's start
// waits for a slot.
func TestStartsAreBounded(t *testing.T) {
	f, d := startGated(t, 2, false)
	for _, name := range []string{"p1", "p2", "p3"} {
		f.put(t, imagePod(t, name, "gated", corev1.RestartPolicyAlways))
	}
	var first []string
	waitfor.Cond(t, 10*time.Second, "two starts blocked", func() (bool, string) {
		got := d.blockedNow()
		first = strings.Fields(got)
		return len(first) == 2, got
	})
	// Every pod is starting (one waits for a slot), none in the driver yet.
	waitfor.Cond(t, 10*time.Second, "all three pods starting in the kubelet", func() (bool, string) {
		var s []string
		for _, name := range []string{"p1", "p2", "p3"} {
			p, _ := f.pod(name)
			_, _, n := f.kubeletPod(string(p.UID))
			s = append(s, fmt.Sprintf("%s=%d", name, n))
		}
		return strings.Join(s, " ") == "p1=1 p2=1 p3=1", strings.Join(s, " ")
	})
	if got := d.blockedNow(); got != strings.Join(first, " ") {
		t.Fatalf("blocked %q; want only %q (two slots)", got, first)
	}
	d.release(strings.Split(first[0], "/")[0])
	waitfor.Cond(t, 10*time.Second, "the third start in the freed slot", func() (bool, string) {
		got := strings.Fields(d.blockedNow())
		return len(got) == 2 && !slices.Contains(got, first[0]), strings.Join(got, " ")
	})
	d.releaseAll()
	for _, name := range []string{"p1", "p2", "p3"} {
		f.waitPod(t, name, "Running", runningPod)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.maxBlock != 2 {
		t.Fatalf("at most %d starts at once; want 2", d.maxBlock)
	}
}

// TestPodDeletedWhileStarting: the container a start returns for a pod
// deleted meanwhile is stopped, and the pod removed once, after the start.
func TestPodDeletedWhileStarting(t *testing.T) {
	f, d := startGated(t, 8, false)
	f.put(t, imagePod(t, "doomed", "gated", corev1.RestartPolicyAlways))
	waitfor.Cond(t, 10*time.Second, "doomed blocked in Start", func() (bool, string) {
		got := d.blockedNow()
		return got == "doomed/app", got
	})
	p := f.waitPod(t, "doomed", "Pending, ContainerCreating", creating)
	uid := string(p.UID)
	f.delete(t, "doomed")
	waitfor.True(t, 10*time.Second, "the kubelet removing doomed", func() bool {
		_, removing, _ := f.kubeletPod(uid)
		return removing
	})
	d.mu.Lock()
	removes := d.removes[uid]
	d.mu.Unlock()
	if removes != 0 {
		t.Fatalf("RemovePod called %d times while the start was in flight", removes)
	}

	d.release("doomed")
	waitfor.Cond(t, 10*time.Second, "doomed's container stopped, the pod removed and forgotten", func() (bool, string) {
		known, _, _ := f.kubeletPod(uid)
		list, _ := f.driver.List()
		d.mu.Lock()
		defer d.mu.Unlock()
		return !known && len(list) == 0 && d.removes[uid] == 1,
			fmt.Sprintf("known %v, attempts %+v, stops %d, removes %d", known, list, d.stops[uid], d.removes[uid])
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stops[uid] != 1 || d.starts["doomed"] != 1 || len(d.raced) != 0 {
		t.Fatalf("stops %d, starts %d, RemovePod during a call in flight %v; want 1, 1, none", d.stops[uid], d.starts["doomed"], d.raced)
	}
}

// TestPodNetworkOncePerPod: a pod's network is set up once, outside the
// lock (other pods run meanwhile), before its containers start; a pod
// deleted during the setup is removed after it and never started.
func TestPodNetworkOncePerPod(t *testing.T) {
	f, d := startGated(t, 8, true)
	nd := f.k.cfg.Driver.(*gateNetDriver)
	f.put(t, imagePod(t, "net-slow", "shoal-testapp", corev1.RestartPolicyAlways, "one", "two"))
	waitfor.Cond(t, 10*time.Second, "net-slow's network setup blocked", func() (bool, string) {
		got := d.blockedNow()
		return got == "net-slow/network", got
	})
	f.waitPod(t, "net-slow", "Pending, ContainerCreating", creating)
	// Another pod gets its network and runs meanwhile (syncs go on).
	f.put(t, imagePod(t, "quick", "shoal-testapp", corev1.RestartPolicyAlways))
	if p := f.waitPod(t, "quick", "Running", runningPod); p.Status.PodIP != "10.244.0.9" {
		t.Fatalf("quick's IP %q", p.Status.PodIP)
	}
	d.release("net-slow")
	f.waitPod(t, "net-slow", "Running with its IP", func(p corev1.Pod) bool { return runningPod(p) && p.Status.PodIP == "10.244.0.9" })
	d.mu.Lock()
	if nd.setups["net-slow"] != 1 || d.starts["net-slow"] != 2 {
		t.Fatalf("net-slow: %d network setups, %d starts; want 1 and 2", nd.setups["net-slow"], d.starts["net-slow"])
	}
	d.mu.Unlock()

	f.put(t, imagePod(t, "net-gone", "shoal-testapp", corev1.RestartPolicyAlways))
	waitfor.Cond(t, 10*time.Second, "net-gone's network setup blocked", func() (bool, string) {
		got := d.blockedNow()
		return got == "net-gone/network", got
	})
	gone, _ := f.pod("net-gone")
	uid := string(gone.UID)
	f.delete(t, "net-gone")
	waitfor.True(t, 10*time.Second, "the kubelet removing net-gone", func() bool {
		_, removing, _ := f.kubeletPod(uid)
		return removing
	})
	d.release("net-gone")
	waitfor.Cond(t, 10*time.Second, "net-gone removed once and forgotten", func() (bool, string) {
		known, _, _ := f.kubeletPod(uid)
		d.mu.Lock()
		defer d.mu.Unlock()
		return !known && d.removes[uid] == 1, fmt.Sprintf("known %v, removes %d", known, d.removes[uid])
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.starts["net-gone"] != 0 || nd.setups["net-gone"] != 1 || len(d.raced) != 0 {
		t.Fatalf("net-gone: %d starts, %d setups, RemovePod during a call in flight %v; want 0, 1, none", d.starts["net-gone"], nd.setups["net-gone"], d.raced)
	}
}

// TestExitDuringStart: an attempt whose exit reaches the kubelet before
// its start's result is recorded as exited, not lost.
func TestExitDuringStart(t *testing.T) {
	f, d := startGated(t, 8, false)
	seen := make(chan error, 1)
	d.afterExit = func(id runtime.ContainerID) {
		// Return only once the kubelet has taken the exit in (or after a
		// deadline, for the test to fail on a lost exit).
		seen <- waitfor.Until(5*time.Second, func() error {
			f.k.mu.Lock()
			defer f.k.mu.Unlock()
			if p := f.k.pods[id.PodUID]; p != nil && p.containers[id.Name] != nil && p.containers[id.Name].early != nil {
				return nil
			}
			return fmt.Errorf("the kubelet has not seen the exit of %s", id)
		})
	}
	f.put(t, imagePod(t, "brief", "exits", corev1.RestartPolicyNever))
	p := f.waitPod(t, "brief", "Failed with exit code 3", func(p corev1.Pod) bool {
		if p.Status.Phase != corev1.PodFailed || len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		return term != nil && term.ExitCode == 3
	})
	if restarts(p) != 0 {
		t.Fatalf("restarts %d under Never", restarts(p))
	}
	if err := <-seen; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownWaitsForStarts: Run returns only once the start in flight
// has returned, and a start still waiting for a slot never begins.
func TestShutdownWaitsForStarts(t *testing.T) {
	f, d := startGated(t, 1, false)
	f.put(t, imagePod(t, "first", "gated", corev1.RestartPolicyAlways))
	waitfor.Cond(t, 10*time.Second, "first blocked in Start", func() (bool, string) {
		got := d.blockedNow()
		return got == "first/app", got
	})
	f.put(t, imagePod(t, "second", "gated", corev1.RestartPolicyAlways))
	waitfor.True(t, 10*time.Second, "second starting (waiting for the slot)", func() bool {
		p, _ := f.pod("second")
		_, _, n := f.kubeletPod(string(p.UID))
		return n == 1
	})

	stopped := make(chan struct{})
	go func() { f.stop(); close(stopped) }()
	// A negative check, bounded: Run must not return while first's Start
	// is blocked.
	select {
	case <-stopped:
		t.Fatal("Run returned while a Start was in flight")
	case <-time.After(200 * time.Millisecond):
	}
	d.release("first")
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the Start was released")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.starts["second"] != 0 {
		t.Fatalf("second started %d times after shutdown", d.starts["second"])
	}
}

// TestAdoptedPodStatusWaitsForNetwork: after an agent restart, no status
// is written for a running pod (which would drop its IP) until its network
// setup has returned its address again.
func TestAdoptedPodStatusWaitsForNetwork(t *testing.T) {
	var gd *gateDriver
	var uid string
	f := startConfig(t, func(s *sim.Driver) runtime.Driver {
		gd = newGateDriver(s)
		return &gateNetDriver{gateDriver: gd, setups: map[string]int{}}
	}, func(c *Config) {
		// The pod and its running container from before the restart.
		o := imagePod(t, "net-adopted", "shoal-testapp", corev1.RestartPolicyAlways)
		res, err := c.Writer.Txn(context.Background(), &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: o}}})
		if err != nil {
			t.Fatal(err)
		}
		uid = res.GetResults()[0].GetObject().GetUid()
		if _, err := gd.Driver.Start(context.Background(), runtime.Pod{UID: uid, Namespace: "default", Name: "net-adopted"},
			runtime.ContainerSpec{Name: "app", Image: "shoal-testapp"}, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(gd.releaseAll)
	waitfor.Cond(t, 10*time.Second, "the adopted pod's network setup blocked", func() (bool, string) {
		got := gd.blockedNow()
		return got == "net-adopted/network", got
	})
	f.k.statusMu.Lock()
	_, queued := f.k.written[uid]
	f.k.statusMu.Unlock()
	if queued {
		t.Fatal("a status was queued for the adopted pod before its address was known")
	}
	gd.release("net-adopted")
	f.waitPod(t, "net-adopted", "Running with its IP", func(p corev1.Pod) bool { return runningPod(p) && p.Status.PodIP == "10.244.0.9" })
	gd.mu.Lock()
	defer gd.mu.Unlock()
	if gd.starts["net-adopted"] != 0 {
		t.Fatalf("the adopted container was started again (%d)", gd.starts["net-adopted"])
	}
}
