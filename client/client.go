// Package client dials a Shoal agent's gRPC API and turns its errors into
// one clear line for people. The CLI and the e2e tests use it.
package client

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// DefaultServer is the agent address used when none is given.
const DefaultServer = "127.0.0.1:7948"

// Conn is a connection to one agent.
type Conn struct {
	pb.ShoalClient
	Addr string
	cc   *grpc.ClientConn
}

// Dial prepares a connection to addr (host:port). It does not block: an
// unreachable agent shows up as the error of the first call.
func Dial(addr string) (*Conn, error) {
	if addr == "" {
		addr = DefaultServer
	}
	// Agents restart in seconds, so a long-lived connection retries at most
	// a second apart rather than backing off for up to two minutes.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("agent address %q: %w", addr, err)
	}
	return &Conn{ShoalClient: pb.NewShoalClient(cc), Addr: addr, cc: cc}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.cc.Close() }

// Explain rewrites a gRPC error as one line naming what went wrong.
func (c *Conn) Explain(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if i := strings.LastIndex(msg, "connect: "); i >= 0 {
			return fmt.Errorf("cannot reach shoal agent at %s: %s", c.Addr, strings.TrimRight(msg[i+len("connect: "):], `"`))
		}
		if strings.Contains(msg, "connection error") || strings.Contains(msg, "dial tcp") {
			return fmt.Errorf("cannot reach shoal agent at %s: %s", c.Addr, msg)
		}
		return fmt.Errorf("cluster unavailable: %s", msg)
	case codes.DeadlineExceeded:
		return fmt.Errorf("timed out talking to %s: %s", c.Addr, msg)
	}
	return errors.New(msg)
}
