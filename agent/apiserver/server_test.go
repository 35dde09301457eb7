package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func cmObj(ns, name string) *pb.Object {
	return &pb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: ns, Name: name, Spec: []byte(`{"data":{"a":"b"}}`)}
}

func TestValidateOps(t *testing.T) {
	tests := []struct {
		name string
		ops  []*pb.Op
		want string // substring of the error; empty for none
	}{
		{"good put", []*pb.Op{{Object: cmObj("default", "a")}}, ""},
		{"no ops", nil, "no operations"},
		{"no object", []*pb.Op{{}}, "object is required"},
		{"alias kind refused", []*pb.Op{{Object: &pb.Object{Kind: "cm", Namespace: "default", Name: "a"}}}, `unknown kind "cm"`},
		{"namespaced kind without namespace", []*pb.Op{{Object: cmObj("", "a")}}, "namespace is required"},
		{"cluster kind with namespace", []*pb.Op{{Object: &pb.Object{Kind: "Namespace", Namespace: "x", Name: "a"}}}, "not namespaced"},
		{"duplicate object", []*pb.Op{{Object: cmObj("default", "a")}, {Type: pb.Op_DELETE, Object: cmObj("default", "a")}}, "appears again"},
		{"bad name", []*pb.Op{{Object: cmObj("default", "Bad_Name")}}, "Bad_Name"},
		{"bad spec", []*pb.Op{{Object: &pb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default", Name: "a", Spec: []byte(`{"data":{"a":1}}`)}}}, "data.a"},
		{"delete default namespace", []*pb.Op{{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Namespace", Name: "default"}}}, "cannot be deleted"},
		{"unknown op type", []*pb.Op{{Type: 9, Object: cmObj("default", "a")}}, "unknown op type"},
		{"bind a config map", []*pb.Op{{Type: pb.Op_BIND, Node: "n1", Object: cmObj("default", "a")}}, "only pods are bound"},
		{"bind to no node", []*pb.Op{{Type: pb.Op_BIND, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: "p"}}}, "names no node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateOps(tt.ops)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestToStatus(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", state.ErrNotFound), codes.NotFound},
		{&state.OpError{Err: fmt.Errorf("y: %w", state.ErrConflict)}, codes.Aborted},
		{state.ErrExists, codes.AlreadyExists},
		{state.ErrInvalid, codes.InvalidArgument},
		{&state.OpError{Err: fmt.Errorf("Insufficient cpu: %w", state.ErrRefused)}, codes.FailedPrecondition},
		{state.ErrCompacted, codes.OutOfRange},
		{consensus.ErrNotLeader, codes.Unavailable},
		{consensus.ErrUnknownOutcome, codes.Unknown},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{fmt.Errorf("image x: %w", errdefs.ErrNotFound), codes.NotFound},
		{fmt.Errorf("blob y: %w", errdefs.ErrInvalidArgument), codes.InvalidArgument},
		{errors.New("boom"), codes.Internal},
		{status.Error(codes.PermissionDenied, "kept"), codes.PermissionDenied},
	}
	for _, tt := range tests {
		if got := status.Code(toStatus(tt.err)); got != tt.want {
			t.Errorf("toStatus(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestRetryableOnlyWhenNothingHappened(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{toStatus(consensus.ErrNotLeader), true},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.2:7948: connect: connection refused"`), true},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), false},
		{toStatus(consensus.ErrUnknownOutcome), false},
		{status.Error(codes.Aborted, notLeaderMsg), false},
		{errors.New(notLeaderMsg), false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

type fakeMembers []gossip.Member

func (f fakeMembers) Members() []gossip.Member { return f }

func TestFromMemberNeedsMarkAndMemberAddress(t *testing.T) {
	s := &Server{cfg: Config{Members: fakeMembers{
		{Name: "n1", Addr: "127.0.0.2", Status: gossip.StatusAlive},
		{Name: "n2", Addr: "127.0.0.3", Status: gossip.StatusDead},
	}}}
	ctxFrom := func(ip string, marked bool) context.Context {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
		if marked {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(forwardedKey, "n1"))
		}
		return ctx
	}
	tests := []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"marked, from a live member", ctxFrom("127.0.0.2", true), true},
		{"unmarked, from a live member", ctxFrom("127.0.0.2", false), false},
		{"marked, from a dead member", ctxFrom("127.0.0.3", true), false},
		{"marked, from a client address", ctxFrom("127.0.0.1", true), false},
		{"no peer", metadata.NewIncomingContext(context.Background(), metadata.Pairs(forwardedKey, "x")), false},
	}
	for _, tt := range tests {
		if got := s.fromMember(tt.ctx); got != tt.want {
			t.Errorf("%s: fromMember = %v, want %v", tt.name, got, tt.want)
		}
	}
}
