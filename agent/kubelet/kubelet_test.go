package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/sim"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/internal/waitfor"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeWriter commits transactions straight into a store, as the leader
// would, with the next log index.
type storeWriter struct {
	mu    sync.Mutex
	store *state.Store
	index uint64
	uids  int
}

func (w *storeWriter) Txn(_ context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.index++
	for _, op := range req.GetOps() {
		if op.GetType() == pb.Op_PUT && op.GetNewUid() == "" {
			w.uids++
			op.NewUid = fmt.Sprintf("uid-%d", w.uids)
		}
	}
	res := w.store.Apply(w.index, &pb.Command{Ops: req.GetOps(), TimeUnixNano: time.Now().UnixNano()})
	if res.Err != nil {
		return nil, res.Err
	}
	return &pb.TxnResponse{Revision: res.Revision, Results: res.Results}, nil
}

func podObject(t *testing.T, name string, policy corev1.RestartPolicy, node string) *pb.Object {
	t.Helper()
	grace := int64(1)
	p := &corev1.Pod{}
	p.Name, p.Namespace = name, "default"
	p.Spec = corev1.PodSpec{NodeName: node, RestartPolicy: policy, TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{Name: "app", Image: "shoal-testapp", Command: []string{"shoal-testapp", "sleep"},
			Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}}}
	o, err := object.FromTyped("Pod", p)
	if err != nil {
		t.Fatal(err)
	}
	o.ApiVersion = "v1"
	return o
}

type fixture struct {
	store  *state.Store
	writer *storeWriter
	driver *sim.Driver
	k      *Kubelet
	// stop ends the kubelet's Run and returns once it has returned; the
	// test's cleanup calls it too.
	stop func()
}

func start(t *testing.T) *fixture { return startWith(t, nil) }

// startWith runs a kubelet on the sim driver, wrapped by wrap when given.
func startWith(t *testing.T, wrap func(*sim.Driver) runtime.Driver) *fixture {
	t.Helper()
	return startConfig(t, wrap, nil)
}

// startConfig is startWith with the kubelet's config changed by tweak
// when given.
func startConfig(t *testing.T, wrap func(*sim.Driver) runtime.Driver, tweak func(*Config)) *fixture {
	t.Helper()
	f := &fixture{store: state.New(), driver: sim.New()}
	var driver runtime.Driver = f.driver
	if wrap != nil {
		driver = wrap(f.driver)
	}
	f.writer = &storeWriter{store: f.store}
	if _, err := f.writer.Txn(context.Background(), &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: &pb.Object{Kind: "Namespace", ApiVersion: "v1", Name: "default", Spec: []byte("{}")}}}}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Node, cfg.NodeIP, cfg.Driver, cfg.Store, cfg.Writer = "n1", "127.0.0.9", driver, f.store, f.writer
	cfg.RestartBackoff, cfg.StatusInterval, cfg.ResyncInterval = 50*time.Millisecond, 20*time.Millisecond, 50*time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	f.k = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.k.Run(ctx); close(done) }()
	f.stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(func() {
		f.stop()
		_ = f.driver.Close()
	})
	return f
}

func (f *fixture) put(t *testing.T, o *pb.Object) {
	t.Helper()
	if _, err := f.writer.Txn(context.Background(), &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: o}}}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) pod(name string) (corev1.Pod, bool) {
	o, _ := f.store.Get("Pod", "default", name)
	var p corev1.Pod
	if o == nil || object.Decode(o, &p) != nil {
		return p, false
	}
	return p, true
}

func (f *fixture) waitPod(t *testing.T, name, what string, cond func(corev1.Pod) bool) corev1.Pod {
	t.Helper()
	var p corev1.Pod
	waitfor.Cond(t, 10*time.Second, name+" "+what, func() (bool, string) {
		var ok bool
		p, ok = f.pod(name)
		b, _ := json.Marshal(p.Status)
		return ok && cond(p), string(b)
	})
	return p
}

func restarts(p corev1.Pod) int32 {
	if len(p.Status.ContainerStatuses) == 0 {
		return -1
	}
	return p.Status.ContainerStatuses[0].RestartCount
}

func TestKubeletRunsRestartsAndStops(t *testing.T) {
	f := start(t)
	f.put(t, podObject(t, "always", corev1.RestartPolicyAlways, "n1"))
	f.put(t, podObject(t, "never", corev1.RestartPolicyNever, "n1"))
	f.put(t, podObject(t, "elsewhere", corev1.RestartPolicyAlways, "n2"))

	running := func(p corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil
	}
	always := f.waitPod(t, "always", "Running", running)
	f.waitPod(t, "never", "Running", running)
	if p, _ := f.pod("elsewhere"); p.Status.Phase != "" {
		t.Fatalf("a pod bound to another node got status %+v", p.Status)
	}
	if always.Status.PodIP != "127.0.0.9" || !isReadyPod(always) {
		t.Fatalf("status %+v: want pod IP 127.0.0.9 and Ready (no readiness probe)", always.Status)
	}

	// A crash under Always restarts the container: restart count 1, last
	// state the exit.
	if err := f.driver.Exit(runtime.ContainerID{PodUID: string(always.UID), Name: "app", Attempt: 0}, 2); err != nil {
		t.Fatal(err)
	}
	p := f.waitPod(t, "always", "restarted once", func(p corev1.Pod) bool { return restarts(p) == 1 && running(p) })
	last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.ExitCode != 2 || last.Reason != runtime.ReasonError {
		t.Fatalf("last state %+v, want exit 2 Error", last)
	}

	// Under Never the pod ends Failed and is not restarted.
	never, _ := f.pod("never")
	if err := f.driver.Exit(runtime.ContainerID{PodUID: string(never.UID), Name: "app", Attempt: 0}, 1); err != nil {
		t.Fatal(err)
	}
	f.waitPod(t, "never", "Failed", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed && restarts(p) == 0 })

	// Deleting the pod stops and removes its containers.
	if _, err := f.writer.Txn(context.Background(), &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "always"}}}}); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, 10*time.Second, "the deleted pod's containers gone", func() (bool, string) {
		list, _ := f.driver.List()
		for _, st := range list {
			if st.ID.PodUID == string(always.UID) {
				return false, fmt.Sprintf("%+v", st)
			}
		}
		return true, ""
	})
}

func TestKubeletStopsPodsFailedElsewhere(t *testing.T) {
	f := start(t)
	f.put(t, podObject(t, "lost", corev1.RestartPolicyAlways, "n1"))
	p := f.waitPod(t, "lost", "Running", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	// The node lifecycle controller failed it while this node was away.
	p.Status.Phase, p.Status.Reason = corev1.PodFailed, "NodeLost"
	st, _ := json.Marshal(p.Status)
	if _, err := f.writer.Txn(context.Background(), &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_STATUS, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "lost", Status: st}}}}); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, 10*time.Second, "the failed pod's container stopped, never restarted", func() (bool, string) {
		s, err := f.driver.Status(runtime.ContainerID{PodUID: string(p.UID), Name: "app", Attempt: 0})
		list, _ := f.driver.List()
		return err == nil && !s.Running && len(list) == 1, fmt.Sprintf("%+v %v (%d attempts)", s, err, len(list))
	})
	if got, _ := f.pod("lost"); got.Status.Phase != corev1.PodFailed {
		t.Fatalf("phase %s, want it left Failed", got.Status.Phase)
	}
}

func isReadyPod(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// netDriver gives pods their own address and cannot pull image "missing".
type netDriver struct {
	*sim.Driver
	mu     sync.Mutex
	envs   [][]string
	setups map[string]int // pod name -> SetupPodNetwork calls
}

func (d *netDriver) SetupPodNetwork(_ context.Context, pod runtime.Pod) (netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.setups == nil {
		d.setups = map[string]int{}
	}
	d.setups[pod.Name]++
	return netip.MustParseAddr("10.244.0.7"), nil
}

func (d *netDriver) Start(ctx context.Context, pod runtime.Pod, c runtime.ContainerSpec, attempt int) (runtime.Status, error) {
	if c.Image == "missing" {
		return runtime.Status{}, fmt.Errorf("%w: localhost/missing:latest: not found", runtime.ErrImagePull)
	}
	d.mu.Lock()
	d.envs = append(d.envs, c.Env)
	d.mu.Unlock()
	return d.Driver.Start(ctx, pod, c, attempt)
}

func TestPodNetworkAndImagePullBackOff(t *testing.T) {
	nd := &netDriver{}
	f := startWith(t, func(s *sim.Driver) runtime.Driver { nd.Driver = s; return nd })
	o := podObject(t, "own-ip", corev1.RestartPolicyAlways, "n1")
	var p corev1.Pod
	_ = object.Decode(o, &p)
	p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env,
		corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		corev1.EnvVar{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}})
	o, _ = object.FromTyped("Pod", &p)
	o.ApiVersion = "v1"
	f.put(t, o)
	f.waitPod(t, "own-ip", "Running with its own IP", func(p corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP == "10.244.0.7" && p.Status.HostIP == "127.0.0.9"
	})
	nd.mu.Lock()
	env := strings.Join(nd.envs[0], " ")
	setups := nd.setups["own-ip"]
	nd.mu.Unlock()
	if !strings.Contains(env, "POD_IP=10.244.0.7") || !strings.Contains(env, "HOST_IP=127.0.0.9") {
		t.Fatalf("env %s: want the pod's own IP and the node's", env)
	}
	if setups != 1 {
		t.Fatalf("the pod's network was set up %d times, want once", setups)
	}

	// An image that cannot be pulled: ErrImagePull, then ImagePullBackOff
	// with the error, retried with no restart counted even under Never.
	bad := podObject(t, "bad-image", corev1.RestartPolicyNever, "n1")
	_ = object.Decode(bad, &p)
	p.Spec.Containers[0].Image = "missing"
	bad, _ = object.FromTyped("Pod", &p)
	bad.ApiVersion = "v1"
	f.put(t, bad)
	f.waitPod(t, "bad-image", "in ImagePullBackOff", func(p corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		w := cs.State.Waiting
		return p.Status.Phase == corev1.PodPending && cs.RestartCount == 0 && w != nil && w.Reason == "ImagePullBackOff" &&
			strings.Contains(w.Message, "not found")
	})
}
