package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// fakeUsage is a kubelet's Usage.
type fakeUsage struct {
	pods []*pb.PodUsage
	err  error
}

func (f fakeUsage) Usage() ([]*pb.PodUsage, error) { return f.pods, f.err }

func podUsage(ns, name string, ctrs ...*pb.ContainerUsage) *pb.PodUsage {
	return &pb.PodUsage{Namespace: ns, Name: name, Containers: ctrs}
}

func ctr(name string, cpu, mem int64) *pb.ContainerUsage {
	return &pb.ContainerUsage{Name: name, CpuMillis: cpu, MemoryBytes: mem}
}

// topText renders a response compactly: pods as ns/name@node=cpu/mem
// (summed), then nodes as node=cpu/mem of cpu/mem, or node!error.
func topText(r *pb.TopResponse) string {
	var parts []string
	for _, p := range r.GetPods() {
		var cpu, mem int64
		for _, c := range p.GetContainers() {
			cpu, mem = cpu+c.GetCpuMillis(), mem+c.GetMemoryBytes()
		}
		parts = append(parts, fmt.Sprintf("%s/%s@%s=%d/%d", p.GetNamespace(), p.GetName(), p.GetNode(), cpu, mem))
	}
	for _, n := range r.GetNodes() {
		if n.GetError() != "" {
			parts = append(parts, n.GetNode()+"!"+n.GetError())
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%d/%d of %d/%d", n.GetNode(), n.GetCpuMillis(), n.GetMemoryBytes(), n.GetCpuAllocatableMillis(), n.GetMemoryAllocatableBytes()))
	}
	return strings.Join(parts, " ")
}

func TestMergeTop(t *testing.T) {
	ok := func(node string, pods ...*pb.PodUsage) nodeTop {
		return nodeTop{node: node, resp: &pb.TopResponse{Pods: pods, Nodes: []*pb.NodeUsage{{Node: node, CpuMillis: 1, MemoryBytes: 2, CpuAllocatableMillis: 1000, MemoryAllocatableBytes: 4096}}}}
	}
	tests := []struct {
		name    string
		replies []nodeTop
		want    string
	}{
		{"nothing", nil, ""},
		{
			"pods sorted across nodes, node filled in",
			[]nodeTop{ok("n2", podUsage("b", "x", ctr("c", 5, 6))), ok("n1", podUsage("a", "z", ctr("c", 1, 1)), podUsage("b", "x", ctr("c", 7, 8)))},
			"a/z@n1=1/1 b/x@n1=7/8 b/x@n2=5/6 n1=1/2 of 1000/4096 n2=1/2 of 1000/4096",
		},
		{
			"failures listed by node",
			[]nodeTop{
				{node: "n3", err: status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`)},
				ok("n1"),
				{node: "n2", err: errors.New("node is dead")},
				{node: "n4", err: status.Error(codes.Unimplemented, "unknown method Top")},
			},
			"n1=1/2 of 1000/4096 n2!node is dead n3!unreachable: connection refused n4!the agent does not serve top (an older version?)",
		},
		{
			"an answer without its node",
			[]nodeTop{{node: "n1", resp: &pb.TopResponse{Pods: []*pb.PodUsage{podUsage("a", "p", ctr("c", 3, 4))}, Nodes: []*pb.NodeUsage{{Node: "other"}}}}},
			"a/p@n1=3/4 n1!the agent reported no usage for its node",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := topText(mergeTop(tt.replies)); got != tt.want {
				t.Fatalf("merged:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLocalTop(t *testing.T) {
	tests := []struct {
		name string
		top  TopSource
		want string
	}{
		{"no source", TopSource{AllocatableCPUMillis: 2000}, "n1!this agent reports no usage"},
		{"not sampled yet", TopSource{Usage: fakeUsage{err: errors.New("metrics not available yet")}}, "n1!metrics not available yet"},
		{
			"pods summed into the node",
			TopSource{Usage: fakeUsage{pods: []*pb.PodUsage{podUsage("a", "p", ctr("c1", 10, 100), ctr("c2", 5, 50)), podUsage("a", "q", ctr("c", 1, 1))}},
				AllocatableCPUMillis: 2000, AllocatableMemoryBytes: 1 << 30},
			"a/p@n1=15/150 a/q@n1=1/1 n1=16/151 of 2000/1073741824",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{cfg: Config{Node: "n1", Top: tt.top}}
			if got := topText(s.localTop()); got != tt.want {
				t.Fatalf("local top:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// stuckTop never answers Top before the caller gives up.
type stuckTop struct{ pb.UnimplementedShoalServer }

func (stuckTop) Top(ctx context.Context, _ *pb.TopRequest) (*pb.TopResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// serve runs a gRPC server for srv on a loopback port until the test ends
// and returns its address.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	register(g)
	done := make(chan struct{})
	go func() { _ = g.Serve(lis); close(done) }()
	t.Cleanup(func() { g.Stop(); <-done })
	return lis.Addr().String()
}

func testServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	s.fwd = newForwarder(cfg, func() string { return "" })
	t.Cleanup(s.fwd.close)
	return s
}

// TestTopFansOut asks a cluster of fakes: this agent, a peer that answers,
// one that hangs, one that is not listening, one of an older version, a
// dead one and one that left.
func TestTopFansOut(t *testing.T) {
	member := func(name, addr string, st gossip.Status) gossip.Member {
		return gossip.Member{Name: name, Status: st, Meta: &pb.NodeMeta{GrpcAddress: addr}}
	}
	peer := testServer(t, Config{Node: "n2", Members: fakeMembers{}, Top: TopSource{
		Usage:                fakeUsage{pods: []*pb.PodUsage{podUsage("default", "web-2", ctr("app", 250, 64<<20))}},
		AllocatableCPUMillis: 1000, AllocatableMemoryBytes: 1 << 30,
	}})
	peerAddr := serve(t, peer.Register)
	stuckAddr := serve(t, func(g *grpc.Server) { pb.RegisterShoalServer(g, stuckTop{}) })
	oldAddr := serve(t, func(g *grpc.Server) { pb.RegisterShoalServer(g, pb.UnimplementedShoalServer{}) })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	s := testServer(t, Config{Node: "n1", Members: fakeMembers{
		member("n1", "", gossip.StatusAlive),
		member("n2", peerAddr, gossip.StatusAlive),
		member("n3", stuckAddr, gossip.StatusSuspect),
		member("n4", closedAddr, gossip.StatusAlive),
		member("n5", oldAddr, gossip.StatusAlive),
		member("n6", "", gossip.StatusDead),
		member("n7", "", gossip.StatusLeft),
	}, Top: TopSource{
		Usage:                fakeUsage{pods: []*pb.PodUsage{podUsage("default", "web-1", ctr("app", 100, 32<<20))}},
		AllocatableCPUMillis: 2000, AllocatableMemoryBytes: 2 << 30,
	}})

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	resp, err := s.Top(ctx, &pb.TopRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Top took %s: the hanging node held it past the deadline", took)
	}
	got := topText(resp)
	for _, want := range []string{
		"default/web-1@n1=100/33554432 default/web-2@n2=250/67108864",
		"n1=100/33554432 of 2000/2147483648",
		"n2=250/67108864 of 1000/1073741824",
		"n3!no answer before the deadline",
		"n4!unreachable: connection refused",
		"n5!the agent does not serve top",
		"n6!node is dead",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %s", want, got)
		}
	}
	if strings.Contains(got, "n7") || len(resp.GetNodes()) != 6 {
		t.Errorf("nodes %s; want n1..n6, not the member that left", prototext.Format(resp))
	}

	// Asked with local, or by another agent, it answers for itself.
	forwarded := metadata.NewIncomingContext(t.Context(), metadata.Pairs(forwardedKey, "n2"))
	for name, call := range map[string]struct {
		ctx context.Context
		req *pb.TopRequest
	}{"local": {t.Context(), &pb.TopRequest{Local: true}}, "forwarded": {forwarded, &pb.TopRequest{}}} {
		resp, err := s.Top(call.ctx, call.req)
		if got := topText(resp); err != nil || got != "default/web-1@n1=100/33554432 n1=100/33554432 of 2000/2147483648" {
			t.Errorf("%s: %s, %v", name, got, err)
		}
	}
}
