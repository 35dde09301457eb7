package informer

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/binding"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

type fixture struct {
	t     *testing.T
	store *state.Store
	index uint64
}

func newFixture(t *testing.T, ring int) *fixture {
	f := &fixture{t: t, store: state.NewWithOptions(state.Options{RingSize: ring, Indexes: binding.Indexes(), Binder: binding.New().Bind})}
	f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "ns-default", Object: &pb.Object{Kind: "Namespace", ApiVersion: "v1", Name: "default"}})
	return f
}

func (f *fixture) apply(ops ...*pb.Op) {
	f.t.Helper()
	f.index++
	if res := f.store.Apply(f.index, &pb.Command{Ops: ops}); res.Err != nil {
		f.t.Fatal(res.Err)
	}
}

func (f *fixture) putPod(name, node string, phase corev1.PodPhase) {
	f.t.Helper()
	p := &corev1.Pod{}
	p.Name, p.Namespace = name, "default"
	p.Spec = corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "x"}}}
	o, err := object.FromTyped("Pod", p)
	if err != nil {
		f.t.Fatal(err)
	}
	f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "uid-" + name, Object: o})
	if phase != "" {
		o.Status = fmt.Appendf(nil, `{"phase":%q}`, phase)
		f.apply(&pb.Op{Type: pb.Op_STATUS, Object: o})
	}
}

func (f *fixture) putNode(name string) {
	f.t.Helper()
	n := &corev1.Node{}
	n.Name = name
	o, err := object.FromTyped("Node", n)
	if err != nil {
		f.t.Fatal(err)
	}
	f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "uid-" + name, Object: o})
}

func names(pods []Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Obj.GetName())
	}
	return out
}

func TestFollowsChangesDecodingEachOnce(t *testing.T) {
	f := newFixture(t, 1000)
	in := New(f.store, nil)
	f.putNode("n1")
	f.putPod("a", "", "")
	f.putPod("b", "n1", "")
	if got := names(in.PodsOn("")); fmt.Sprint(got) != "[a]" {
		t.Fatalf("unbound = %v, want [a]", got)
	}
	// Pods are decoded when first read: the node and a, not b.
	if d := in.Decodes(); d != 2 {
		t.Fatalf("first read decoded %d objects, want 2 (n1 and a)", d)
	}
	if got := in.Unbound(); len(got) != 1 || in.Decodes() != 2 {
		t.Fatalf("Unbound = %d pods after %d decodes, want 1 pod and no more decodes", len(got), in.Decodes())
	}
	in.Pods()
	base := in.Decodes()
	if base != 3 {
		t.Fatalf("after reading every pod %d decodes, want 3", base)
	}
	// Reading again decodes nothing.
	in.Pods()
	in.Nodes()
	if d := in.Decodes(); d != base {
		t.Fatalf("an unchanged store decoded %d more", d-base)
	}
	// Binding a moves it from the unbound set to n1; one decode.
	f.putPod("a", "n1", "")
	if got := names(in.PodsOn("n1")); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("on n1 = %v", got)
	}
	if got := in.PodsOn(""); len(got) != 0 {
		t.Fatalf("unbound after bind = %v", names(got))
	}
	if d := in.Decodes(); d != base+1 {
		t.Fatalf("one change decoded %d objects", d-base)
	}
	// A finished pod is listed on its node but holds nothing.
	f.putPod("c", "n1", corev1.PodSucceeded)
	if got := len(in.PodsOn("n1")); got != 3 {
		t.Fatalf("%d pods on n1, want 3", got)
	}
	if got := len(in.Bound()["n1"]); got != 2 {
		t.Fatalf("%d pods hold n1, want 2 (c finished)", got)
	}
	// A bind through the state machine decodes nothing.
	f.putPod("d", "", "")
	in.PodsOn("") // as its claimer reads it
	full := in.Decodes()
	f.apply(&pb.Op{Type: pb.Op_BIND, Node: "n1", Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "d"}})
	if got := len(in.PodsOn("n1")); got != 4 {
		t.Fatalf("%d pods on n1 after binding d, want 4", got)
	}
	if d := in.Decodes(); d != full {
		t.Fatalf("a bind decoded %d pods in full", d-full)
	}
	// A status report on a pod read before decodes only the status.
	f.apply(&pb.Op{Type: pb.Op_STATUS, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "d",
		Status: []byte(`{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}`)}})
	in.PodsOn("n1")
	if d := in.Decodes(); d != full {
		t.Fatalf("a status report decoded %d pods in full", d-full)
	}
	// Both partial decodes give the pod a full decode gives.
	if in.statusDecodes != 2 {
		t.Fatalf("%d partial decodes, want 2 (d's bind and status)", in.statusDecodes)
	}
	for _, p := range in.PodsOn("n1") {
		var full corev1.Pod
		if err := object.Decode(p.Obj, &full); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&full, p.Pod) {
			t.Fatalf("%s: informer holds\n%+v\nfull decode gives\n%+v", p.Obj.GetName(), p.Pod, &full)
		}
	}
	// Deleting a pod and a namespace removes them.
	f.apply(&pb.Op{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "b"}})
	if got := names(in.PodsOn("n1")); fmt.Sprint(got) != "[a c d]" {
		t.Fatalf("after delete b: %v", got)
	}
	f.apply(&pb.Op{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Namespace", Name: "default"}})
	if got := in.Pods(); len(got) != 0 {
		t.Fatalf("pods left after their namespace went: %v", names(got))
	}
	if got := len(in.Nodes()); got != 1 {
		t.Fatalf("%d nodes, want 1", got)
	}
}

func TestRelistsWhenBehindTheRing(t *testing.T) {
	f := newFixture(t, 2)
	in := New(f.store, nil)
	f.putPod("a", "", "")
	in.Sync()
	base := in.Decodes()
	for i := range 10 {
		f.putPod(fmt.Sprintf("p%d", i), "n1", "")
	}
	f.apply(&pb.Op{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "a"}})
	if rev := in.Sync(); rev != f.store.Revision() {
		t.Fatalf("synced to %d, store at %d", rev, f.store.Revision())
	}
	if got := len(in.PodsOn("n1")); got != 10 {
		t.Fatalf("%d pods on n1 after relist, want 10", got)
	}
	if got := in.PodsOn(""); len(got) != 0 {
		t.Fatalf("a deleted while behind is still listed: %v", names(got))
	}
	if d := in.Decodes() - base; d != 10 {
		t.Fatalf("relist decoded %d, want the 10 new pods only", d)
	}
}
