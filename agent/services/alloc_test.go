package services

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

type fixture struct {
	t    *testing.T
	s    *state.Store
	cidr netip.Prefix
	n    uint64
}

func newFixture(t *testing.T, cidr string) *fixture {
	f := &fixture{t: t, s: state.NewWithOptions(state.Options{Indexes: Indexes(), Admit: Admit}), cidr: netip.MustParsePrefix(cidr)}
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "ns", Object: &pb.Object{Kind: "Namespace", ApiVersion: "v1", Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) apply(ops ...*pb.Op) error {
	f.n++
	return f.s.Apply(f.n, &pb.Command{Ops: ops, TimeUnixNano: 1}).Err
}

func service(name string, typ corev1.ServiceType, clusterIP string, ports ...corev1.ServicePort) *pb.Object {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: clusterIP, Ports: ports, Selector: map[string]string{"app": name}}}
	o, err := object.FromTyped("Service", svc)
	if err != nil {
		panic(err)
	}
	return o
}

func port(p, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: fmt.Sprint("p", p), Port: p, Protocol: corev1.ProtocolTCP, NodePort: nodePort}
}

// create allocates o as the leader would and applies it.
func (f *fixture) create(o *pb.Object) (*corev1.Service, error) {
	cur, _ := f.s.Get(o.GetKind(), o.GetNamespace(), o.GetName())
	a, err := Allocate(f.s.Indexed, f.cidr, cur, o)
	if err != nil {
		return nil, err
	}
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "uid-" + o.GetName(), Object: a}); err != nil {
		return nil, err
	}
	stored, _ := f.s.Get("Service", "default", o.GetName())
	var svc corev1.Service
	if err := object.Decode(stored, &svc); err != nil {
		f.t.Fatal(err)
	}
	return &svc, nil
}

func TestAllocateGivesDistinctAddressesInRange(t *testing.T) {
	f := newFixture(t, "10.96.0.0/24")
	seenIP, seenPort := map[string]string{}, map[int32]string{}
	for i := range 200 {
		name := fmt.Sprint("svc", i)
		svc, err := f.create(service(name, corev1.ServiceTypeNodePort, "", port(80, 0), port(443, 0)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ip := netip.MustParseAddr(svc.Spec.ClusterIP)
		if !f.cidr.Contains(ip) || ip == f.cidr.Addr() || ip.String() == "10.96.0.1" || ip.String() == "10.96.0.255" {
			t.Fatalf("%s: ClusterIP %s: not a usable address of %s", name, ip, f.cidr)
		}
		if other, dup := seenIP[svc.Spec.ClusterIP]; dup {
			t.Fatalf("%s: ClusterIP %s already given to %s", name, ip, other)
		}
		seenIP[svc.Spec.ClusterIP] = name
		if len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP {
			t.Fatalf("%s: clusterIPs %v do not match clusterIP %s", name, svc.Spec.ClusterIPs, ip)
		}
		for _, p := range svc.Spec.Ports {
			if p.NodePort < 30000 || p.NodePort > 32767 {
				t.Fatalf("%s: node port %d out of 30000-32767", name, p.NodePort)
			}
			if other, dup := seenPort[p.NodePort]; dup {
				t.Fatalf("%s: node port %d already given to %s", name, p.NodePort, other)
			}
			seenPort[p.NodePort] = name
		}
	}
}

func TestAllocateExhaustsSmallCIDR(t *testing.T) {
	f := newFixture(t, "10.96.0.0/29") // 8 addresses, 5 usable
	for i := range 5 {
		if _, err := f.create(service(fmt.Sprint("s", i), "", "")); err != nil {
			t.Fatalf("service %d of 5: %v", i, err)
		}
	}
	_, err := f.create(service("s5", "", ""))
	if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "spec.clusterIP") {
		t.Fatalf("sixth service: got %v, want ErrExhausted naming spec.clusterIP", err)
	}
	// A deleted service frees its address.
	if err := f.apply(&pb.Op{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Service", Namespace: "default", Name: "s2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.create(service("s5", "", "")); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

func TestUpdateKeepsAllocatedValues(t *testing.T) {
	f := newFixture(t, "10.96.0.0/12")
	first, err := f.create(service("web", corev1.ServiceTypeNodePort, "", port(80, 0)))
	if err != nil {
		t.Fatal(err)
	}
	// The manifest applied again says nothing of clusterIP or nodePort.
	again, err := f.create(service("web", corev1.ServiceTypeNodePort, "", port(80, 0), port(81, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if again.Spec.ClusterIP != first.Spec.ClusterIP || again.Spec.Ports[0].NodePort != first.Spec.Ports[0].NodePort {
		t.Fatalf("re-apply moved the service: %s/%d, was %s/%d", again.Spec.ClusterIP, again.Spec.Ports[0].NodePort,
			first.Spec.ClusterIP, first.Spec.Ports[0].NodePort)
	}
	if again.Spec.Ports[1].NodePort == 0 || again.Spec.Ports[1].NodePort == again.Spec.Ports[0].NodePort {
		t.Fatalf("new port got node port %d", again.Spec.Ports[1].NodePort)
	}
}

func TestHeadlessAndExternalNameGetNoClusterIP(t *testing.T) {
	f := newFixture(t, "10.96.0.0/12")
	h, err := f.create(service("h", "", corev1.ClusterIPNone))
	if err != nil || h.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("headless: %v %q", err, h.Spec.ClusterIP)
	}
	o := service("x", corev1.ServiceTypeExternalName, "")
	a, err := Allocate(f.s.Indexed, f.cidr, nil, o)
	if err != nil || a != o {
		t.Fatalf("ExternalName changed by allocation: %v", err)
	}
}

func TestRequestedValues(t *testing.T) {
	f := newFixture(t, "10.96.0.0/12")
	if _, err := f.create(service("a", corev1.ServiceTypeNodePort, "10.96.0.10", port(80, 30080))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    *pb.Object
		want string
	}{
		{"ClusterIP in use", service("b", "", "10.96.0.10"), `spec.clusterIP: "10.96.0.10": already allocated to service default/a`},
		{"node port in use", service("c", corev1.ServiceTypeNodePort, "", port(81, 30080)), "spec.ports: node port TCP/30080: already allocated to service default/a"},
		{"ClusterIP outside the CIDR", service("d", "", "192.168.1.1"), `spec.clusterIP: "192.168.1.1": not in the service CIDR 10.96.0.0/12`},
		{"ClusterIP changed", service("a", corev1.ServiceTypeNodePort, "10.96.0.11", port(80, 30080)), `spec.clusterIP: "10.96.0.11": immutable (was "10.96.0.10")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.s.List("Service", "", nil)
			_, err := f.create(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			after, _ := f.s.List("Service", "", nil)
			if len(after) != len(before) || after[0].GetResourceVersion() != before[0].GetResourceVersion() {
				t.Fatalf("refused request changed the stored services: %v -> %v", before, after)
			}
		})
	}
	// The same node port number over UDP is a different port.
	udp := port(81, 30080)
	udp.Protocol = corev1.ProtocolUDP
	if _, err := f.create(service("u", corev1.ServiceTypeNodePort, "", udp)); err != nil {
		t.Fatalf("UDP/30080 beside TCP/30080: %v", err)
	}
}

// Two proposals from the same view that picked the same address: the state
// machine admits the first and refuses the second.
func TestRacingProposalsNeverDuplicate(t *testing.T) {
	f := newFixture(t, "10.96.0.0/12")
	a, err := Allocate(f.s.Indexed, f.cidr, nil, service("a", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	var sa corev1.Service
	_ = object.Decode(a, &sa)
	b := service("b", "", sa.Spec.ClusterIP)
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "a", Object: a}); err != nil {
		t.Fatal(err)
	}
	err = f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "b", Object: b})
	if !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("second proposal of %s: got %v, want refused", sa.Spec.ClusterIP, err)
	}
	// Within one transaction too.
	c := service("c", "", "10.96.0.77")
	d := service("d", "", "10.96.0.77")
	if err := f.apply(&pb.Op{Type: pb.Op_PUT, NewUid: "c", Object: c}, &pb.Op{Type: pb.Op_PUT, NewUid: "d", Object: d}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("one transaction with the same ClusterIP twice: got %v, want refused", err)
	}
}

func TestIndexesSurviveRestore(t *testing.T) {
	f := newFixture(t, "10.96.0.0/12")
	if _, err := f.create(service("a", corev1.ServiceTypeNodePort, "10.96.0.10", port(80, 30080))); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap, err := state.ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r := state.NewWithOptions(state.Options{Indexes: Indexes(), Admit: Admit})
	r.Restore(snap)
	if len(r.Indexed(ByClusterIP, "10.96.0.10")) != 1 || len(r.Indexed(ByNodePort, "TCP/30080")) != 1 {
		t.Fatal("restored replica lost its service indexes")
	}
}
