package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/agent"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// forwardedKey is the metadata key an agent puts on a call it forwards to
// the leader (agent/apiserver's forwardedKey). With it, and sent from a
// member's own address, the leader takes a raw write exactly as it takes a
// forwarded bind: no second validation, straight to Raft.
const forwardedKey = "x-shoal-forwarded"

// writeTimeout bounds one raw write, as commitBinds bounds a bind.
const writeTimeout = 10 * time.Second

// rawResult is one run of raw writes.
type rawResult struct {
	writes, errors int
	elapsed        time.Duration
	rate           float64 // successful writes per second
	p50, p99       time.Duration
}

// writer sends one agent's share of the raw writes the way that agent's
// scheduler sends a bind (Agent.commitBinds calls its apiserver's Txn):
// a follower forwards over gRPC from its own address to the leader with
// the forwarded mark; the leader commits through its own Raft node, as
// its apiserver does for a local call.
type writer struct {
	name   string
	leader *agent.Agent // set for the leader's own share
	conn   *grpc.ClientConn
}

func (w *writer) put(ctx context.Context, o *pb.Object) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	op := &pb.Op{Type: pb.Op_PUT, Object: o}
	if w.leader != nil {
		// What apiserver.commit does on the leader.
		op.NewUid = uuid.NewString()
		res, err := w.leader.Node().Apply(ctx, &pb.Command{TimeUnixNano: time.Now().UnixNano(), Ops: []*pb.Op{op}})
		if err != nil {
			return err
		}
		return res.Err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, forwardedKey, w.name)
	_, err := pb.NewShoalClient(w.conn).Txn(ctx, &pb.TxnRequest{Ops: []*pb.Op{op}})
	return err
}

// writers prepares one writer per agent, with warm connections to the
// leader (the agents' forwarders keep theirs open).
func (b *bench) writers(ctx context.Context) ([]*writer, func(), error) {
	l, err := b.c.waitLeader(ctx)
	if err != nil {
		return nil, nil, err
	}
	target := net.JoinHostPort(b.c.configOf(l).BindAddr, fmt.Sprint(b.c.configOf(l).GRPCPort))
	var ws []*writer
	closeAll := func() {
		for _, w := range ws {
			if w.conn != nil {
				_ = w.conn.Close()
			}
		}
	}
	for i, a := range b.c.agents {
		w := &writer{name: b.c.cfgs[i].Name}
		ws = append(ws, w)
		if a == l {
			w.leader = a
			continue
		}
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(b.c.cfgs[i].BindAddr)}, Timeout: 5 * time.Second}
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", addr)
			}))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		w.conn = conn
		vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = pb.NewShoalClient(conn).Version(vctx, &pb.VersionRequest{})
		cancel()
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("connect %s to the leader at %s: %w", w.name, target, err)
		}
	}
	return ws, closeAll, nil
}

// rawWrites puts cfg.pods small ConfigMaps, spread over the agents as the
// pods are spread over claimers: one goroutine per agent writes its share
// one after the other, all agents at once. The rate is the successful
// writes over the time from the start to the last completion.
func (b *bench) rawWrites(ctx context.Context, rep int) (rawResult, error) {
	ws, closeAll, err := b.writers(ctx)
	if err != nil {
		return rawResult{}, err
	}
	defer closeAll()
	n := len(ws)
	lat := make([][]time.Duration, n)
	errs := make([]int, n)
	firstErr := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, w := range ws {
		share := b.cfg.pods / n
		if i < b.cfg.pods%n {
			share++
		}
		wg.Go(func() {
			<-start
			for k := range share {
				o := &pb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default",
					Name: fmt.Sprintf("raw-r%d-%s-%d", rep, w.name, k), Spec: []byte(`{"data":{"k":"v"}}`)}
				t := time.Now()
				if err := w.put(ctx, o); err != nil {
					errs[i]++
					if firstErr[i] == nil {
						firstErr[i] = err
					}
					continue
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	if ctx.Err() != nil {
		return rawResult{}, ctx.Err()
	}
	var all []time.Duration
	r := rawResult{elapsed: elapsed}
	for i := range n {
		all = append(all, lat[i]...)
		r.errors += errs[i]
	}
	r.writes = len(all)
	r.rate = float64(r.writes) / elapsed.Seconds()
	r.p50, r.p99 = stats.Percentile(all, 50), stats.Percentile(all, 99)
	if r.errors > 0 {
		for i, err := range firstErr {
			if err != nil {
				return r, fmt.Errorf("%d of %d writes failed; first from %s: %w", r.errors, b.cfg.pods, ws[i].name, err)
			}
		}
	}
	return r, nil
}
