package apiserver

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// forwardedKey marks a call that one agent forwarded to another, so that a
// former leader refuses it rather than forwarding it again.
const forwardedKey = "x-shoal-forwarded"

// retryInterval is how often a forwarder looks again for a leader.
const retryInterval = 25 * time.Millisecond

type forwarder struct {
	cfg    Config
	leader func() string

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newForwarder(cfg Config, leader func() string) *forwarder {
	return &forwarder{cfg: cfg, leader: leader, conns: map[string]*grpc.ClientConn{}}
}

func (f *forwarder) client(addr string) (pb.ShoalClient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.conns[addr]; ok {
		return pb.NewShoalClient(c), nil
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if f.cfg.LocalIP != "" {
		// Leave from the agent's own address (see Server.fromMember).
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(f.cfg.LocalIP)}, Timeout: 5 * time.Second}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}))
	}
	opts = append(opts, f.cfg.DialOptions...)
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	f.conns[addr] = c
	return pb.NewShoalClient(c), nil
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for addr, c := range f.conns {
		_ = c.Close()
		delete(f.conns, addr)
	}
}

// forwardedContext marks an outgoing call as forwarded by node.
func forwardedContext(ctx context.Context, node string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, forwardedKey, node)
}

// endOfStream turns the end of a proxied stream into the proxy's result.
func endOfStream(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func isForwarded(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && len(md.Get(forwardedKey)) > 0
}

// retryable reports whether err guarantees the call did nothing: the
// receiver said it is not the leader, or no connection could be made. A
// call that reached a leader which then failed is never retried, since it
// may have committed.
func retryable(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	msg := st.Message()
	return strings.Contains(msg, notLeaderMsg) || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "no such host") || strings.Contains(msg, "produced zero addresses")
}

// forwardCall runs local on this agent when it leads, or remote on the
// leader, retrying until ctx ends while there is no leader or the call was
// refused without effect.
func forwardCall[R any](ctx context.Context, f *forwarder, isLeader func() bool,
	local func(context.Context) (R, error), remote func(context.Context, pb.ShoalClient) (R, error)) (R, error) {
	var zero R
	tick := time.NewTicker(retryInterval)
	defer tick.Stop()
	lastErr := errors.New("no leader known")
	for {
		if isLeader() {
			r, err := local(ctx)
			if err == nil || !retryable(err) || isForwarded(ctx) {
				return r, err
			}
			lastErr = err
		} else if isForwarded(ctx) {
			// A forwarded call reached a node that lost the lead: send it back.
			return zero, status.Error(codes.Unavailable, notLeaderMsg)
		} else if addr := f.leader(); addr != "" {
			c, err := f.client(addr)
			if err != nil {
				return zero, status.Errorf(codes.Internal, "connect to leader at %s: %v", addr, err)
			}
			r, err := remote(forwardedContext(ctx, f.cfg.Node), c)
			if err == nil || !retryable(err) {
				return r, err
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return zero, status.Errorf(codes.Unavailable, "no leader could take the call before the deadline: %v", lastErr)
		case <-tick.C:
		}
	}
}
