package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/internal/waitfor"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// memberlist and grpc close some goroutines just after Shutdown returns.
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// inProcessCluster starts n agents in this test process on 127.0.240+x.y,
// so the race detector sees the agent's own code.
func inProcessCluster(t *testing.T, subnet, n int) []*Agent {
	t.Helper()
	var agents []*Agent
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		cfg := DefaultConfig()
		cfg.Name = fmt.Sprintf("n%d", i+1)
		cfg.BindAddr = fmt.Sprintf("127.0.%d.%d", subnet, i+2)
		cfg.DataDir = t.TempDir()
		cfg.BootstrapExpect = n
		cfg.Join = []string{fmt.Sprintf("127.0.%d.2", subnet)}
		if os.Getenv("SHOAL_TEST_LOG") == "1" {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		a, err := New(cfg)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		agents = append(agents, a)
		go func() {
			_ = a.Run(ctx)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range agents {
			<-done
		}
	})
	return agents
}

func TestInProcessClusterServesAndForwards(t *testing.T) {
	agents := inProcessCluster(t, 240, 3)
	waitfor.Cond(t, 30*time.Second, "one leader known to all and namespace default", func() (bool, string) {
		leaders := map[string]bool{}
		for _, a := range agents {
			id, _ := a.Node().Leader()
			leaders[id] = true
			if o, _ := a.Node().Store().Get("Namespace", "", "default"); o == nil {
				return false, a.cfg.Name + " lacks namespace default"
			}
		}
		return len(leaders) == 1 && !leaders[""], fmt.Sprint(leaders)
	})
	var follower *Agent
	for _, a := range agents {
		if !a.Node().IsLeader() {
			follower = a
			break
		}
	}
	conn, err := client.Dial(follower.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A write sent to a follower is forwarded to the leader.
	resp, err := conn.Txn(ctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: &pb.Object{
		Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default", Name: "fwd", Spec: []byte(`{"data":{"a":"b"}}`),
	}}}})
	if err != nil {
		t.Fatalf("write through a follower: %v", err)
	}
	// Read-your-writes on the follower's replica.
	got, err := conn.Get(ctx, &pb.GetRequest{Kind: "ConfigMap", Namespace: "default", Name: "fwd",
		Read: &pb.ReadOptions{MinRevision: resp.GetRevision()}})
	if err != nil || got.GetObject().GetUid() == "" {
		t.Fatalf("read-your-writes: %v %v", got, err)
	}
	// Compare-and-swap with a stale revision is a conflict and changes nothing.
	_, err = conn.Txn(ctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, ExpectRevision: resp.GetRevision() - 1, Object: &pb.Object{
		Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default", Name: "fwd", Spec: []byte(`{"data":{"a":"c"}}`),
	}}}})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("stale compare-and-swap: %v, want Aborted", err)
	}
	// Invalid input is refused before it reaches the log.
	_, err = conn.Txn(ctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: &pb.Object{
		Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default", Name: "Bad_Name", Spec: []byte(`{}`),
	}}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad name: %v, want InvalidArgument", err)
	}
	// A linearizable list through the follower sees the write.
	list, err := conn.List(ctx, &pb.ListRequest{Kind: "configmaps", LabelSelector: "", Read: &pb.ReadOptions{Linearizable: true}})
	if err != nil || len(list.GetObjects()) != 1 {
		t.Fatalf("linearizable list: %v %v", list, err)
	}
	// Watch from before the write replays it.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	stream, err := conn.Watch(wctx, &pb.WatchRequest{Kind: "ConfigMap", FromRevision: resp.GetRevision() - 1})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := stream.Recv()
	if err != nil || ev.GetObject().GetName() != "fwd" || ev.GetType() != pb.WatchEvent_ADDED {
		t.Fatalf("watch: %v %v", ev, err)
	}
}
