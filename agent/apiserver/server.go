// Package apiserver serves Shoal's gRPC API on an agent: writes are
// validated here and forwarded to the Raft leader, reads are answered from
// the local replica at the consistency the caller asks for.
//
// It owns the mapping of store and Raft errors to gRPC codes (errors.go)
// and leader forwarding (forward.go). It must not decide placement or run
// controllers.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/agent/podcidr"
	"github.com/shoal-dev/shoal/agent/services"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/gossip"
	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/object/manifest"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
	"github.com/shoal-dev/shoal/version"
)

// Raft is what the server needs of the consensus node.
type Raft interface {
	Store() *state.Store
	IsLeader() bool
	Leader() (id, addr string)
	Apply(ctx context.Context, cmd *pb.Command) (state.Result, error)
	ReadIndex(ctx context.Context) (uint64, error)
	Status() consensus.Status
	Servers() ([]consensus.Server, error)
}

// Members is what the server needs of the gossip mesh.
type Members interface {
	Members() []gossip.Member
}

// Clock gives the time stamped into commands (a seam for tests).
type Clock func() time.Time

// Config configures a Server.
type Config struct {
	Node    string
	Raft    Raft
	Members Members
	Logger  *slog.Logger
	Clock   Clock
	// DialOptions are used for connections to the leader (tests may add
	// interceptors); insecure transport credentials are the default.
	DialOptions []grpc.DialOption
	// PodIO serves logs and exec of the pods on this agent (nil: none).
	PodIO PodIO
	// Top is what Top reports for this agent (see SetUsage).
	Top TopSource
	// Images is this agent's runtime's image store: archives are loaded
	// into it, peers fetch images from it (nil: none).
	Images ImageStore
	// LocalIP is the agent's bound IP: calls it forwards leave from it, so
	// the leader can tell a fellow agent's forwarded call from a client's.
	LocalIP string
	// MaxWait bounds how long a read waits for the replica and a write
	// waits for a leader when the caller set no deadline.
	MaxWait time.Duration
	// ServiceCIDR is where the leader allocates ClusterIPs (zero:
	// services.DefaultCIDR).
	ServiceCIDR netip.Prefix
	// ClusterCIDR is where the leader allocates nodes' pod CIDRs, each a
	// /NodeCIDRBits (zero: podcidr.DefaultClusterCIDR and /24).
	ClusterCIDR  netip.Prefix
	NodeCIDRBits int
}

// Server implements pb.ShoalServer.
type Server struct {
	pb.UnimplementedShoalServer
	cfg Config
	log *slog.Logger
	fwd *forwarder
}

// New returns a server; Close releases its connections to other agents.
func New(cfg Config) (*Server, error) {
	if cfg.Raft == nil || cfg.Members == nil {
		return nil, errors.New("apiserver: Raft and Members are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 10 * time.Second
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = services.DefaultCIDR
	}
	if !cfg.ClusterCIDR.IsValid() {
		cfg.ClusterCIDR = podcidr.DefaultClusterCIDR
	}
	if cfg.NodeCIDRBits == 0 {
		cfg.NodeCIDRBits = podcidr.DefaultNodeBits
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.fwd = newForwarder(cfg, s.leaderAddress)
	return s, nil
}

// Close drops the cached connections to other agents.
func (s *Server) Close() { s.fwd.close() }

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { pb.RegisterShoalServer(g, s) }

func (s *Server) withWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.MaxWait)
}

// Txn validates a transaction and commits it through the leader.
func (s *Server) Txn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	// The agent that received the call validated it; the leader does not
	// pay for that again on calls forwarded from a live member's address.
	if !s.fromMember(ctx) {
		if err := validateOps(req.GetOps()); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	ctx, cancel := s.withWait(ctx)
	defer cancel()
	return forwardCall(ctx, s.fwd, s.cfg.Raft.IsLeader, func(ctx context.Context) (*pb.TxnResponse, error) {
		return s.commit(ctx, req)
	}, func(ctx context.Context, c pb.ShoalClient) (*pb.TxnResponse, error) {
		return c.Txn(ctx, req)
	})
}

// commit runs on the leader: it stamps time and uids and proposes.
func (s *Server) commit(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	cmd := &pb.Command{TimeUnixNano: s.cfg.Clock().UnixNano()}
	store := s.cfg.Raft.Store()
	for _, op := range req.GetOps() {
		op = proto.CloneOf(op)
		if op.GetType() == pb.Op_PUT && op.GetNewUid() == "" {
			op.NewUid = newUID()
		}
		if op.GetType() == pb.Op_PUT && op.GetObject().GetKind() == "Service" {
			// The leader picks free addresses in its replica; the state
			// machine refuses them if another proposal took them first.
			in := op.GetObject()
			cur, _ := store.Get(in.GetKind(), in.GetNamespace(), in.GetName())
			o, err := services.Allocate(store.Indexed, s.cfg.ServiceCIDR, cur, in)
			if err != nil {
				code := codes.InvalidArgument
				if errors.Is(err, services.ErrExhausted) {
					code = codes.ResourceExhausted
				}
				return nil, status.Error(code, err.Error())
			}
			op.Object = o
		}
		if op.GetType() == pb.Op_PUT && op.GetObject().GetKind() == "Node" {
			// Nodes get pod CIDRs the same way.
			in := op.GetObject()
			cur, _ := store.Get(in.GetKind(), in.GetNamespace(), in.GetName())
			o, err := podcidr.Allocate(store.Indexed, s.cfg.ClusterCIDR, s.cfg.NodeCIDRBits, cur, in)
			switch {
			case errors.Is(err, podcidr.ErrExhausted):
				// The node registers without one; its agent says so.
				s.log.Warn("node gets no pod CIDR", "node", in.GetName(), "err", err)
			case err != nil:
				return nil, status.Error(codes.InvalidArgument, err.Error())
			default:
				op.Object = o
			}
		}
		cmd.Ops = append(cmd.Ops, op)
	}
	res, err := s.cfg.Raft.Apply(ctx, cmd)
	if err != nil {
		return nil, toStatus(err)
	}
	if res.Err != nil {
		return nil, toStatus(res.Err)
	}
	return &pb.TxnResponse{Revision: res.Revision, Results: res.Results}, nil
}

// ReadIndex is served by the leader only.
func (s *Server) ReadIndex(ctx context.Context, _ *pb.ReadIndexRequest) (*pb.ReadIndexResponse, error) {
	rev, err := s.cfg.Raft.ReadIndex(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReadIndexResponse{Revision: rev}, nil
}

// CatchUp waits until the local replica holds every write acknowledged
// before the call: a read index from the leader (wherever it is), then the
// replica reaching it.
func (s *Server) CatchUp(ctx context.Context) error {
	return s.catchUp(ctx, &pb.ReadOptions{Linearizable: true})
}

// catchUp waits until the local replica can serve a read at the asked
// consistency.
func (s *Server) catchUp(ctx context.Context, ro *pb.ReadOptions) error {
	target := ro.GetMinRevision()
	if ro.GetLinearizable() {
		resp, err := forwardCall(ctx, s.fwd, s.cfg.Raft.IsLeader, func(ctx context.Context) (*pb.ReadIndexResponse, error) {
			return s.ReadIndex(ctx, nil)
		}, func(ctx context.Context, c pb.ShoalClient) (*pb.ReadIndexResponse, error) {
			return c.ReadIndex(ctx, &pb.ReadIndexRequest{})
		})
		if err != nil {
			return err
		}
		target = max(target, resp.GetRevision())
	}
	if target == 0 {
		return nil
	}
	if err := s.cfg.Raft.Store().WaitRevision(ctx, target); err != nil {
		return status.Errorf(codes.DeadlineExceeded, "replica on %s has not reached revision %d: %v", s.cfg.Node, target, err)
	}
	return nil
}

// Get returns one object.
func (s *Server) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	kind, err := lookupKind(req.GetKind())
	if err != nil {
		return nil, err
	}
	ns, err := scopeNamespace(kind, req.GetNamespace(), false)
	if err != nil {
		return nil, err
	}
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "get: name is required")
	}
	ctx, cancel := s.withWait(ctx)
	defer cancel()
	if err := s.catchUp(ctx, req.GetRead()); err != nil {
		return nil, err
	}
	o, rev := s.cfg.Raft.Store().Get(kind.Name, ns, req.GetName())
	if o == nil {
		return nil, status.Errorf(codes.NotFound, "%s %q not found", kind.Plural, req.GetName())
	}
	return &pb.GetResponse{Object: o, Revision: rev}, nil
}

// List returns the objects of a kind matching a label selector.
func (s *Server) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	kind, err := lookupKind(req.GetKind())
	if err != nil {
		return nil, err
	}
	ns, err := scopeNamespace(kind, req.GetNamespace(), true)
	if err != nil {
		return nil, err
	}
	match, err := selectorFunc(req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withWait(ctx)
	defer cancel()
	if err := s.catchUp(ctx, req.GetRead()); err != nil {
		return nil, err
	}
	objs, rev := s.cfg.Raft.Store().List(kind.Name, ns, match)
	return &pb.ListResponse{Objects: objs, Revision: rev}, nil
}

// Watch streams changes after a revision until the client goes away.
func (s *Server) Watch(req *pb.WatchRequest, stream grpc.ServerStreamingServer[pb.WatchEvent]) error {
	kind, err := lookupKind(req.GetKind())
	if err != nil {
		return err
	}
	ns, err := scopeNamespace(kind, req.GetNamespace(), true)
	if err != nil {
		return err
	}
	match, err := selectorFunc(req.GetLabelSelector())
	if err != nil {
		return err
	}
	store := s.cfg.Raft.Store()
	ctx := stream.Context()
	rev := req.GetFromRevision()
	if rev == 0 {
		rev = store.Revision()
	}
	for {
		changed := store.Changed()
		events, upTo, err := store.EventsSince(rev)
		if err != nil {
			return toStatus(err)
		}
		for _, ev := range events {
			o := ev.Object
			if o.GetKind() != kind.Name || (ns != "" && o.GetNamespace() != ns) || (match != nil && !match(o)) {
				continue
			}
			if err := stream.Send(&pb.WatchEvent{Type: ev.Type, Object: o, Revision: ev.Revision}); err != nil {
				return err
			}
		}
		rev = upTo
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// Members lists what gossip knows.
func (s *Server) Members(context.Context, *pb.MembersRequest) (*pb.MembersResponse, error) {
	resp := &pb.MembersResponse{}
	for _, m := range s.cfg.Members.Members() {
		resp.Members = append(resp.Members, &pb.Member{Name: m.Name, Address: m.Addr, Status: string(m.Status), Meta: m.Meta})
	}
	return resp, nil
}

// RaftStatus reports the Raft group as this agent sees it.
func (s *Server) RaftStatus(context.Context, *pb.RaftStatusRequest) (*pb.RaftStatusResponse, error) {
	st := s.cfg.Raft.Status()
	servers, err := s.cfg.Raft.Servers()
	if err != nil {
		return nil, toStatus(err)
	}
	alive := map[string]bool{}
	for _, m := range s.cfg.Members.Members() {
		alive[m.Name] = m.IsAlive()
	}
	resp := &pb.RaftStatusResponse{
		Leader: st.Leader, Term: st.Term, AppliedIndex: st.AppliedIndex, CommitIndex: st.CommitIndex,
		LastIndex: st.LastIndex, Node: s.cfg.Node, State: st.State,
	}
	for _, sv := range servers {
		suffrage := "nonvoter"
		if sv.Voter {
			suffrage = "voter"
		}
		resp.Servers = append(resp.Servers, &pb.RaftServer{
			Id: sv.ID, Address: sv.Address, Suffrage: suffrage, Leader: sv.ID == st.Leader, Alive: alive[sv.ID],
		})
	}
	return resp, nil
}

// Version reports the agent's version.
func (s *Server) Version(context.Context, *pb.VersionRequest) (*pb.VersionResponse, error) {
	return &pb.VersionResponse{Version: version.Version, Node: s.cfg.Node}, nil
}

// fromMember reports whether the call was forwarded by a live agent of this
// cluster: it carries the forwarded mark and comes from a member's address.
func (s *Server) fromMember(ctx context.Context) bool {
	if !isForwarded(ctx) {
		return false
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return false
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return false
	}
	for _, m := range s.cfg.Members.Members() {
		if m.Addr == host && m.IsAlive() {
			return true
		}
	}
	return false
}

// leaderAddress is the gRPC address of the leader, from its gossip facts.
func (s *Server) leaderAddress() string {
	id, _ := s.cfg.Raft.Leader()
	if id == "" {
		return ""
	}
	for _, m := range s.cfg.Members.Members() {
		if m.Name == id && m.IsAlive() && m.Meta != nil {
			return m.Meta.GetGrpcAddress()
		}
	}
	return ""
}

func lookupKind(name string) (object.Kind, error) {
	k, ok := object.Lookup(name)
	if !ok {
		return object.Kind{}, status.Errorf(codes.InvalidArgument, "unknown kind %q", name)
	}
	return k, nil
}

// scopeNamespace checks the namespace against the kind's scope. An empty
// namespace of a namespaced kind means "default" for a single object and
// "all namespaces" for a list.
func scopeNamespace(k object.Kind, ns string, list bool) (string, error) {
	if !k.Namespaced {
		if ns != "" {
			return "", status.Errorf(codes.InvalidArgument, "%s is not namespaced: namespace %q given", k.Name, ns)
		}
		return "", nil
	}
	if ns == "" && !list {
		return "default", nil
	}
	return ns, nil
}

func selectorFunc(sel string) (func(*pb.Object) bool, error) {
	if sel == "" {
		return nil, nil
	}
	parsed, err := object.ParseSelector(sel)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if parsed.Empty() {
		return nil, nil
	}
	return func(o *pb.Object) bool { return parsed.Matches(labels.Set(o.GetLabels())) }, nil
}

// validateOps checks every op as outside input: the same rules as the CLI's
// manifest decoder.
func validateOps(ops []*pb.Op) error {
	if len(ops) == 0 {
		return errors.New("transaction has no operations")
	}
	seen := map[string]int{}
	for i, op := range ops {
		o := op.GetObject()
		if o == nil {
			return fmt.Errorf("op %d: object is required", i)
		}
		k, ok := object.Lookup(o.GetKind())
		if !ok || k.Name != o.GetKind() {
			return fmt.Errorf("op %d: unknown kind %q", i, o.GetKind())
		}
		if k.Namespaced && o.GetNamespace() == "" {
			return fmt.Errorf("op %d: %s %q: namespace is required", i, k.Name, o.GetName())
		}
		if !k.Namespaced && o.GetNamespace() != "" {
			return fmt.Errorf("op %d: %s %q: not namespaced, namespace %q given", i, k.Name, o.GetName(), o.GetNamespace())
		}
		if o.GetName() == "" {
			return fmt.Errorf("op %d: %s: name is required", i, k.Name)
		}
		key := state.KeyOf(o)
		if j, dup := seen[key]; dup {
			return fmt.Errorf("op %d: %s %q appears again (first in op %d)", i, k.Name, o.GetName(), j)
		}
		seen[key] = i
		switch op.GetType() {
		case pb.Op_PUT:
			if err := manifest.ValidateObject(o); err != nil {
				return fmt.Errorf("op %d: %w", i, err)
			}
		case pb.Op_BIND:
			if k.Name != "Pod" {
				return fmt.Errorf("op %d: only pods are bound, not a %s", i, k.Name)
			}
			if op.GetNode() == "" {
				return fmt.Errorf("op %d: bind of pod %q names no node", i, o.GetName())
			}
		case pb.Op_DELETE, pb.Op_STATUS:
			if op.GetType() == pb.Op_DELETE && k.Name == state.NamespaceKind && o.GetName() == "default" {
				return fmt.Errorf("op %d: namespace \"default\" cannot be deleted", i)
			}
		default:
			return fmt.Errorf("op %d: unknown op type %d", i, op.GetType())
		}
	}
	return nil
}

func newUID() string { return uuid.NewString() }
