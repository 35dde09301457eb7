package consensus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/internal/waitfor"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

type inmemCluster struct {
	nodes  map[string]*Node
	trans  map[string]*raft.InmemTransport
	regs   map[string]*prometheus.Registry
	config Config
}

func newInmemCluster(t *testing.T, ids ...string) *inmemCluster {
	t.Helper()
	c := &inmemCluster{nodes: map[string]*Node{}, trans: map[string]*raft.InmemTransport{}, regs: map[string]*prometheus.Registry{}}
	c.config = Config{InMemory: true, SnapshotThreshold: 32, TrailingLogs: 8, SnapshotInterval: 50 * time.Millisecond}
	for _, id := range ids {
		c.add(t, id)
	}
	return c
}

func (c *inmemCluster) add(t *testing.T, id string) *Node {
	t.Helper()
	_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	for other, ot := range c.trans {
		tr.Connect(raft.ServerAddress(other), ot)
		ot.Connect(raft.ServerAddress(id), tr)
	}
	cfg := c.config
	cfg.ID, cfg.Transport = id, tr
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[id], c.trans[id], c.regs[id] = n, tr, reg
	t.Cleanup(func() { _ = n.Shutdown() })
	return n
}

func (c *inmemCluster) kill(id string) {
	_ = c.nodes[id].Shutdown()
	for _, ot := range c.trans {
		ot.Disconnect(raft.ServerAddress(id))
	}
	delete(c.nodes, id)
	delete(c.trans, id)
}

func (c *inmemCluster) leader(t *testing.T) *Node {
	t.Helper()
	var l *Node
	waitfor.True(t, 10*time.Second, "a leader", func() bool {
		for _, n := range c.nodes {
			if n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func putCmd(ns, name, value string) *pb.Command {
	return &pb.Command{TimeUnixNano: time.Now().UnixNano(), Ops: []*pb.Op{{
		Type:   pb.Op_PUT,
		NewUid: "uid-" + name,
		Object: &pb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: ns, Name: name, Spec: []byte(`{"data":{"v":"` + value + `"}}`)},
	}}}
}

func nsCmd(name string) *pb.Command {
	return &pb.Command{Ops: []*pb.Op{{Type: pb.Op_PUT, NewUid: "ns-" + name, Object: &pb.Object{Kind: state.NamespaceKind, Name: name}}}}
}

func TestNodeReplicatesAndFailsOver(t *testing.T) {
	c := newInmemCluster(t, "n1", "n2", "n3")
	if err := c.nodes["n1"].Bootstrap([]Server{{ID: "n1", Address: "n1"}, {ID: "n2", Address: "n2"}, {ID: "n3", Address: "n3"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := c.leader(t)
	if _, err := l.Apply(ctx, nsCmd("default")); err != nil {
		t.Fatal(err)
	}
	res, err := l.Apply(ctx, putCmd("default", "a", "1"))
	if err != nil || res.Err != nil {
		t.Fatalf("apply: %v %v", err, res.Err)
	}
	// A follower refuses writes and serves reads once it reaches the revision.
	for id, n := range c.nodes {
		if n == l {
			continue
		}
		if _, err := n.Apply(ctx, putCmd("default", "b", "1")); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("%s: apply on a follower: %v", id, err)
		}
		if err := n.Store().WaitRevision(ctx, res.Revision); err != nil {
			t.Fatal(err)
		}
		if o, _ := n.Store().Get("ConfigMap", "default", "a"); o == nil {
			t.Fatalf("%s: object missing after its revision", id)
		}
	}
	if _, err := l.ReadIndex(ctx); err != nil {
		t.Fatalf("read index on the leader: %v", err)
	}

	// Kill the leader: the others elect a new one that has the write.
	old := l.cfg.ID
	c.kill(old)
	l = c.leader(t)
	if l.cfg.ID == old {
		t.Fatal("dead node still leader")
	}
	if o, _ := l.Store().Get("ConfigMap", "default", "a"); o == nil {
		t.Fatal("acknowledged write lost in failover")
	}
	if _, err := l.Apply(ctx, putCmd("default", "c", "1")); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	rev, err := l.ReadIndex(ctx)
	if err != nil || rev < res.Revision {
		t.Fatalf("read index after failover: %d %v", rev, err)
	}
}

func TestNewMemberCatchesUpFromSnapshot(t *testing.T) {
	c := newInmemCluster(t, "n1")
	n1 := c.nodes["n1"]
	if err := n1.Bootstrap([]Server{{ID: "n1", Address: "n1"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.leader(t)
	if _, err := n1.Apply(ctx, nsCmd("default")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := n1.Apply(ctx, putCmd("default", fmt.Sprintf("o%03d", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := n1.Snapshot(); err != nil {
		t.Fatal(err)
	}
	n2 := c.add(t, "n2")
	if err := n1.AddNonvoter("n2", "n2"); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, 10*time.Second, "n2 to hold 101 objects", func() (bool, string) {
		return n2.Store().Len() == 101, fmt.Sprintf("%d objects", n2.Store().Len())
	})
	if got := testutil.ToFloat64(n2.metrics.restores); got < 1 {
		t.Fatalf("n2 caught up without a snapshot restore (restores=%v)", got)
	}
	servers, err := n1.Servers()
	if err != nil || len(servers) != 2 || servers[1].Voter {
		t.Fatalf("servers %+v %v", servers, err)
	}
}
