package binding

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

type fixture struct {
	t     *testing.T
	store *state.Store
	index uint64
}

func newFixture(t *testing.T) *fixture {
	b := New()
	f := &fixture{t: t, store: state.NewWithOptions(state.Options{Indexes: Indexes(), Binder: b.Bind})}
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "ns", Object: &pb.Object{Kind: "Namespace", ApiVersion: "v1", Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) apply(ops ...*pb.Op) error {
	f.index++
	return f.store.Apply(f.index, &pb.Command{Ops: ops}).Err
}

func (f *fixture) node(name, cpu string, pods int64, runtime string) {
	f.t.Helper()
	n := &corev1.Node{}
	n.Name = name
	n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourcePods: *resource.NewQuantity(pods, resource.DecimalSI)}
	n.Status.NodeInfo.ContainerRuntimeVersion = runtime
	o, err := object.FromTyped("Node", n)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "node-" + name, Object: o}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) pod(name, cpu string, hostPort int32) {
	f.t.Helper()
	p := &corev1.Pod{}
	p.Name, p.Namespace = name, "default"
	c := corev1.Container{Name: "app", Image: "x"}
	if cpu != "" {
		c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	}
	if hostPort != 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: hostPort, HostPort: hostPort}}
	}
	p.Spec.Containers = []corev1.Container{c}
	o, err := object.FromTyped("Pod", p)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "uid-" + name, Object: o}); err != nil {
		f.t.Fatal(err)
	}
}

func bind(name, node string) *pb.Op {
	return &pb.Op{Type: pb.Op_BIND, Node: node, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: name}}
}

func (f *fixture) nodeOf(name string) string {
	o, _ := f.store.Get("Pod", "default", name)
	return NodeName(o)
}

func TestBindChecksFitAgainstWhatIsBoundByThen(t *testing.T) {
	f := newFixture(t)
	f.node("n1", "1", 110, "")
	f.pod("a", "600m", 0)
	f.pod("b", "600m", 0)
	f.pod("c", "300m", 0)
	// Two claimers that both saw n1 empty: the second bind no longer fits.
	if err := f.apply(bind("a", "n1")); err != nil {
		t.Fatalf("first bind: %v", err)
	}
	err := f.apply(bind("b", "n1"))
	if !errors.Is(err, state.ErrRefused) {
		t.Fatalf("overcommitting bind: got %v, want ErrRefused", err)
	}
	if want := "Insufficient cpu"; err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("refusal %q does not say %q", err, want)
	}
	if got := f.nodeOf("b"); got != "" {
		t.Fatalf("refused pod is bound to %q", got)
	}
	// One that still fits goes through, and the index files it.
	if err := f.apply(bind("c", "n1")); err != nil {
		t.Fatalf("fitting bind: %v", err)
	}
	if got := len(f.store.Indexed(PodsByNode, "n1")); got != 2 {
		t.Fatalf("index holds %d pods on n1, want 2", got)
	}
	// Binding twice, binding to a missing node, binding a non-pod.
	for _, tc := range []struct {
		op   *pb.Op
		want error
	}{
		{bind("a", "n1"), ErrBound},
		{bind("b", "nope"), ErrNoNode},
		{&pb.Op{Type: pb.Op_BIND, Node: "n1", Object: &pb.Object{Kind: "Namespace", Name: "default"}}, ErrNotAPod},
	} {
		if err := f.apply(tc.op); !errors.Is(err, state.ErrRefused) || !bytes.Contains([]byte(err.Error()), []byte(tc.want.Error())) {
			t.Errorf("bind %s to %s: got %v, want refused with %q", tc.op.Object.Name, tc.op.Node, err, tc.want)
		}
	}
}

func TestBindsInOneTransactionSeeEachOther(t *testing.T) {
	f := newFixture(t)
	f.node("n1", "1", 110, "")
	f.pod("a", "600m", 0)
	f.pod("b", "600m", 0)
	err := f.apply(bind("a", "n1"), bind("b", "n1"))
	if !errors.Is(err, state.ErrRefused) {
		t.Fatalf("two binds that together overcommit: got %v", err)
	}
	if f.nodeOf("a") != "" || f.nodeOf("b") != "" {
		t.Fatal("a refused transaction bound a pod")
	}
}

func TestPodCountHostPortsAndFinishedPods(t *testing.T) {
	f := newFixture(t)
	f.node("n1", "4", 2, "process://shoal")
	f.pod("web1", "", 8080)
	f.pod("web2", "", 8080)
	f.pod("x", "", 0)
	f.pod("y", "", 0)
	if err := f.apply(bind("web1", "n1")); err != nil {
		t.Fatal(err)
	}
	if err := f.apply(bind("web2", "n1")); err == nil || !bytes.Contains([]byte(err.Error()), []byte("free ports")) {
		t.Fatalf("second hostPort 8080: got %v", err)
	}
	if err := f.apply(bind("x", "n1")); err != nil {
		t.Fatal(err)
	}
	if err := f.apply(bind("y", "n1")); err == nil || !bytes.Contains([]byte(err.Error()), []byte("Too many pods")) {
		t.Fatalf("third pod on a 2-pod node: got %v", err)
	}
	// A finished pod frees its place.
	if err := f.apply(&pb.Op{Type: pb.Op_STATUS, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "x",
		Status: []byte(`{"phase":"Succeeded"}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := f.apply(bind("y", "n1")); err != nil {
		t.Fatalf("bind after a pod finished: %v", err)
	}
	// And a finished pod cannot be bound.
	f.pod("z", "", 0)
	if err := f.apply(&pb.Op{Type: pb.Op_STATUS, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "z",
		Status: []byte(`{"phase":"Failed"}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := f.apply(bind("z", "n1")); !errors.Is(err, state.ErrRefused) {
		t.Fatalf("bind of a failed pod: %v", err)
	}
}

func TestReplicasAgreeAfterSnapshotRestore(t *testing.T) {
	f := newFixture(t)
	f.node("n1", "1", 110, "")
	for i := range 3 {
		f.pod(fmt.Sprintf("p%d", i), "400m", 0)
	}
	if err := f.apply(bind("p0", "n1")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.store.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	sn, err := state.ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	g := &fixture{t: t, store: state.NewWithOptions(state.Options{Indexes: Indexes(), Binder: New().Bind}), index: f.index}
	g.store.Restore(sn)
	// Both replicas apply the same two binds: the first fits, the second
	// does not, on each.
	for _, r := range []*fixture{f, g} {
		if err := r.apply(bind("p1", "n1")); err != nil {
			t.Fatalf("p1: %v", err)
		}
		if err := r.apply(bind("p2", "n1")); !errors.Is(err, state.ErrRefused) {
			t.Fatalf("p2 on a restored replica: %v", err)
		}
	}
}

func TestWithNodeNameKeepsTheRest(t *testing.T) {
	in := []byte(`{"spec":{"containers":[{"name":"a","image":"x"}],"terminationGracePeriodSeconds":12345678901234},"extra":{"k":1}}`)
	out, err := WithNodeName(in, "n7")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"extra":{"k":1},"spec":{"containers":[{"name":"a","image":"x"}],"nodeName":"n7","terminationGracePeriodSeconds":12345678901234}}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}
