package podcidr

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/object/manifest"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

type fixture struct {
	t       *testing.T
	s       *state.Store
	cluster netip.Prefix
	n       uint64
}

func newFixture(t *testing.T, cluster string) *fixture {
	return &fixture{t: t, s: state.NewWithOptions(state.Options{Indexes: Indexes(), Admit: Admit}), cluster: netip.MustParsePrefix(cluster)}
}

func (f *fixture) apply(ops ...*pb.Op) error {
	f.n++
	return f.s.Apply(f.n, &pb.Command{Ops: ops, TimeUnixNano: 1}).Err
}

func node(name, podCIDR string) *pb.Object {
	o, err := object.FromTyped("Node", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: podCIDR}})
	if err != nil {
		panic(err)
	}
	o.ApiVersion = "v1"
	return o
}

// register allocates o as the leader would and applies it; it returns the
// stored pod CIDR.
func (f *fixture) register(o *pb.Object) (string, error) {
	cur, _ := f.s.Get("Node", "", o.GetName())
	a, err := Allocate(f.s.Indexed, f.cluster, DefaultNodeBits, cur, o)
	if err != nil {
		return "", err
	}
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "uid-" + o.GetName(), Object: a}); err != nil {
		return "", err
	}
	stored, _ := f.s.Get("Node", "", o.GetName())
	return Of(stored), nil
}

func TestAllocateGivesDisjointRangesInCluster(t *testing.T) {
	f := newFixture(t, "10.244.0.0/20") // 16 node ranges
	seen := map[string]string{}
	for i := range 16 {
		name := fmt.Sprintf("n%d", i)
		got, err := f.register(node(name, ""))
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		p := netip.MustParsePrefix(got)
		if p.Bits() != 24 || !f.cluster.Contains(p.Addr()) {
			t.Fatalf("%s got %s: want a /24 inside %s", name, got, f.cluster)
		}
		if other, dup := seen[got]; dup {
			t.Fatalf("%s and %s both got %s", other, name, got)
		}
		seen[got] = name
	}
	_, err := f.register(node("n16", ""))
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("17th node in a /20: got %v, want ErrExhausted", err)
	}
}

func TestReRegisterKeepsRange(t *testing.T) {
	f := newFixture(t, "10.244.0.0/16")
	first, err := f.register(node("a", ""))
	if err != nil {
		t.Fatal(err)
	}
	// The agent's registration updates carry no pod CIDR of their own.
	again, err := f.register(node("a", ""))
	if err != nil || again != first {
		t.Fatalf("re-register: got %q, %v; want %q kept", again, err, first)
	}
	// A change is refused by every replica.
	err = f.apply(&pb.Op{Type: pb.Op_PUT, Object: node("a", "10.244.250.0/24")})
	if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("changing spec.podCIDR: got %v, want refused as immutable", err)
	}
}

func TestRequestedRange(t *testing.T) {
	f := newFixture(t, "10.244.0.0/16")
	got, err := f.register(node("a", "10.244.77.0/24"))
	if err != nil || got != "10.244.77.0/24" {
		t.Fatalf("requested range: got %q, %v", got, err)
	}
	// Requests outside the cluster CIDR are kept too (--pod-cidr wins).
	if got, err := f.register(node("b", "192.168.10.0/24")); err != nil || got != "192.168.10.0/24" {
		t.Fatalf("requested range outside the cluster CIDR: got %q, %v", got, err)
	}
	for _, tc := range []struct{ name, cidr, want string }{
		{"same range", "10.244.77.0/24", "overlaps node a"},
		{"larger range holding it", "10.244.0.0/16", "overlaps node a"},
		{"smaller range inside it", "10.244.77.128/25", "overlaps node a"},
		{"not a cidr", "10.244.1.0", "not a CIDR"},
		{"host bits", "10.244.1.1/24", "host bits set"},
		{"ipv6", "fd00::/64", "not an IPv4 range"},
	} {
		err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "c", Object: node("c", tc.cidr)})
		if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "spec.podCIDR") {
			t.Errorf("%s (%s): got %v, want refused with %q", tc.name, tc.cidr, err, tc.want)
		}
	}
	if o, _ := f.s.Get("Node", "", "c"); o != nil {
		t.Fatal("a refused node was stored")
	}
	// Allocation steps around a range of another size.
	f2 := newFixture(t, "10.244.0.0/23") // two /24s
	if _, err := f2.register(node("big", "10.244.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if got, err := f2.register(node("x", "")); err != nil || got != "10.244.1.0/24" {
		t.Fatalf("allocation next to a requested range: got %q, %v", got, err)
	}
}

func TestRacingRegistrationsNeverOverlap(t *testing.T) {
	f := newFixture(t, "10.244.0.0/16")
	a, err := Allocate(f.s.Indexed, f.cluster, DefaultNodeBits, nil, node("a", ""))
	if err != nil {
		t.Fatal(err)
	}
	// b was proposed from the same replica state and picked a's range.
	b := node("b", Of(a))
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "a", Object: a}); err != nil {
		t.Fatal(err)
	}
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "b", Object: b}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("second proposal of %s: got %v, want refused", Of(a), err)
	}
	c, d := node("c", "10.244.9.0/24"), node("d", "10.244.9.0/24")
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "c", Object: c}, &pb.Op{Type: pb.Op_PUT, NewUid: "d", Object: d}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("one transaction with one range twice: got %v, want refused", err)
	}
}

func TestOtherKindsPass(t *testing.T) {
	o := &pb.Object{Kind: "ConfigMap", Name: "x", Namespace: "default"}
	got, err := Allocate(nil, DefaultClusterCIDR, DefaultNodeBits, nil, o)
	if err != nil || got != o {
		t.Fatalf("Allocate of a ConfigMap: %v, %v", got, err)
	}
	if err := Admit(nil, nil, o); err != nil {
		t.Fatal(err)
	}
}

// TestAllocatedNodeIsValid: what the leader writes passes the API's own
// validation, so later writers of the Node (the lifecycle controller,
// cordon) can write it back.
func TestAllocatedNodeIsValid(t *testing.T) {
	f := newFixture(t, "10.244.0.0/16")
	if _, err := f.register(node("a", "")); err != nil {
		t.Fatal(err)
	}
	stored, _ := f.s.Get("Node", "", "a")
	if err := manifest.ValidateObject(stored); err != nil {
		t.Fatalf("allocated node: %v", err)
	}
	bad := node("b", "10.244.9.0/24")
	var n corev1.Node
	if err := object.Decode(bad, &n); err != nil {
		t.Fatal(err)
	}
	n.Spec.PodCIDRs = []string{"10.244.10.0/24"}
	o, _ := object.FromTyped("Node", &n)
	o.ApiVersion = "v1"
	if err := manifest.ValidateObject(o); err == nil || !strings.Contains(err.Error(), "spec.podCIDRs[0]") {
		t.Fatalf("podCIDRs unlike podCIDR: %v", err)
	}
}
