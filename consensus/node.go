package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/shoal-dev/shoal/consensus/state"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Errors callers act on.
var (
	// ErrNotLeader means this node cannot take the call; nothing was done.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrUnknownOutcome means the write may or may not have been committed
	// (leadership was lost while it was in flight).
	ErrUnknownOutcome = errors.New("leadership lost while committing; the write may or may not have applied")
)

// Config configures a Node. Zero durations take their DefaultConfig value.
type Config struct {
	// ID is the Raft server id: the node name.
	ID string
	// Addr is the Raft address (ip:port) to bind and advertise.
	Addr string
	// DataDir holds raft/ (bolt log and snapshots). Unused when InMemory.
	DataDir string
	// InMemory keeps log and snapshots in memory (tests).
	InMemory bool
	// Transport overrides the TCP transport (tests use raft.InmemTransport).
	Transport raft.Transport

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one; TrailingLogs how many stay after it.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration

	// Store configures the replicated store (indexes, the bind check).
	Store state.Options

	Logger     *slog.Logger
	LogOutput  io.Writer // raft's own log lines; nil discards them
	Registerer prometheus.Registerer
}

// DefaultConfig returns timing tuned for a LAN: a dead leader is replaced
// in about a second.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotInterval:   30 * time.Second,
	}
}

// Validate reports the first problem of the config.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("consensus: ID is required")
	case c.Addr == "" && c.Transport == nil:
		return errors.New("consensus: Addr or Transport is required")
	case c.DataDir == "" && !c.InMemory:
		return errors.New("consensus: DataDir is required unless InMemory")
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return errors.New("consensus: LeaderLeaseTimeout must not exceed HeartbeatTimeout")
	}
	return nil
}

// Node is one member of the Raft group with its full replica of the state.
type Node struct {
	cfg     Config
	log     *slog.Logger
	raft    *raft.Raft
	store   *state.Store
	metrics *metrics
	closers []io.Closer

	mu          sync.Mutex
	barrierTerm uint64 // the term in which this leader has applied all earlier entries

	stop         chan struct{}
	wg           sync.WaitGroup
	shutdownOnce sync.Once
}

// New opens (or creates) the Raft state under cfg.DataDir and starts Raft.
// A node with no prior state waits to be bootstrapped or added by a leader.
func New(cfg Config) (*Node, error) {
	def := DefaultConfig()
	fill := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	fill(&cfg.HeartbeatTimeout, def.HeartbeatTimeout)
	fill(&cfg.ElectionTimeout, def.ElectionTimeout)
	fill(&cfg.LeaderLeaseTimeout, def.LeaderLeaseTimeout)
	fill(&cfg.CommitTimeout, def.CommitTimeout)
	fill(&cfg.SnapshotInterval, def.SnapshotInterval)
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = def.SnapshotThreshold
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = def.TrailingLogs
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, store: state.NewWithOptions(cfg.Store), metrics: newMetrics(cfg.Registerer), stop: make(chan struct{})}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	out := cfg.LogOutput
	if out == nil {
		out = io.Discard
	}
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: out, Level: hclog.Info})

	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.InMemory {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		dir := filepath.Join(cfg.DataDir, "raft")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create raft dir: %w", err)
		}
		bolt, err := raftboltdb.New(raftboltdb.Options{
			Path: filepath.Join(dir, "raft.db"),
			// As etcd does: the freelist is rebuilt on open rather than
			// written with every commit, which halves the bytes a log
			// append writes. Every append is still fsynced.
			BoltOptions: &bbolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
		})
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", dir, err)
		}
		n.closers = append(n.closers, bolt)
		// Replication reads recent entries back; keep them in memory rather
		// than open a bolt read transaction per entry.
		cache, err := raft.NewLogCache(1024, bolt)
		if err != nil {
			n.closeAll()
			return nil, fmt.Errorf("raft log cache: %w", err)
		}
		logs, stable = cache, bolt
		fs, err := raft.NewFileSnapshotStore(dir, 2, out)
		if err != nil {
			n.closeAll()
			return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
		}
		snaps = fs
	}
	trans := cfg.Transport
	if trans == nil {
		addr, err := net.ResolveTCPAddr("tcp", cfg.Addr)
		if err != nil {
			n.closeAll()
			return nil, fmt.Errorf("raft address %q: %w", cfg.Addr, err)
		}
		tcp, err := raft.NewTCPTransport(cfg.Addr, addr, 8, 10*time.Second, out)
		if err != nil {
			n.closeAll()
			return nil, fmt.Errorf("raft transport on %s: %w", cfg.Addr, err)
		}
		n.closers = append(n.closers, tcp)
		trans = tcp
	}
	notify := make(chan bool, 16)
	rc.NotifyCh = notify
	r, err := raft.NewRaft(rc, &fsm{store: n.store, metrics: n.metrics}, logs, stable, snaps, trans)
	if err != nil {
		n.closeAll()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	n.metrics.registerGauges(cfg.Registerer, n)
	n.wg.Add(1)
	go n.watchLeadership(notify)
	return n, nil
}

func (n *Node) closeAll() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		_ = n.closers[i].Close()
	}
}

// watchLeadership runs a barrier at the start of each term this node leads,
// so that linearizable reads never miss entries of an earlier term.
func (n *Node) watchLeadership(notify <-chan bool) {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-notify:
			n.log.Info("raft leadership changed", "leader", leader, "term", n.raft.CurrentTerm())
			if leader {
				n.metrics.elections.Inc()
				go func() { _ = n.barrier() }()
			}
		}
	}
}

func (n *Node) barrier() error {
	term := n.raft.CurrentTerm()
	n.mu.Lock()
	done := n.barrierTerm == term
	n.mu.Unlock()
	if done {
		return nil
	}
	if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
		return mapRaftErr(err)
	}
	n.mu.Lock()
	if term > n.barrierTerm {
		n.barrierTerm = term
	}
	n.mu.Unlock()
	return nil
}

// Store is the local replica. Reads from it are as fresh as this node.
func (n *Node) Store() *state.Store { return n.store }

// HasState reports whether this node already belongs to a Raft group (it
// has a configuration from a bootstrap, a leader, or its data dir).
func (n *Node) HasState() bool {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false
	}
	return len(f.Configuration().Servers) > 0
}

// Server is one member of the Raft configuration.
type Server struct {
	ID      string
	Address string
	Voter   bool
}

// Bootstrap creates the group with the given voters. Every voter must call
// it with the same list, or exactly one must (the others get the
// configuration from it).
func (n *Node) Bootstrap(voters []Server) error {
	cfg := raft.Configuration{}
	for _, s := range voters {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address)})
	}
	if err := n.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("bootstrap raft with %d voters: %w", len(voters), err)
	}
	return nil
}

// Servers returns the current Raft configuration.
func (n *Node) Servers() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the id and address of the leader this node knows, empty
// when it knows none.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Status is this node's view of the group.
type Status struct {
	State        string
	Term         uint64
	AppliedIndex uint64
	CommitIndex  uint64
	LastIndex    uint64
	Leader       string
}

// Status reports this node's Raft state.
func (n *Node) Status() Status {
	id, _ := n.Leader()
	return Status{
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		AppliedIndex: n.raft.AppliedIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		LastIndex:    n.raft.LastIndex(),
		Leader:       id,
	}
}

// Apply commits cmd through the log and returns what the state machine
// made of it. Only the leader may call it (ErrNotLeader otherwise).
func (n *Node) Apply(ctx context.Context, cmd *pb.Command) (state.Result, error) {
	data, err := encodeCommand(cmd)
	if err != nil {
		return state.Result{}, fmt.Errorf("encode command: %w", err)
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return state.Result{}, context.DeadlineExceeded
		}
	}
	start := time.Now()
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return state.Result{}, mapRaftErr(err)
	}
	n.metrics.commit.Observe(time.Since(start).Seconds())
	res, ok := f.Response().(state.Result)
	if !ok {
		return state.Result{}, fmt.Errorf("apply: unexpected response %T", f.Response())
	}
	return res, nil
}

// ReadIndex returns a revision that covers every write acknowledged before
// the call, after confirming that this node is still the leader. A replica
// that has applied it can serve a linearizable read.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		return 0, ErrNotLeader
	}
	if err := n.barrier(); err != nil {
		return 0, err
	}
	rev := n.store.Revision()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, mapRaftErr(err)
	}
	return rev, nil
}

// AddNonvoter adds a server that replicates the log without voting.
func (n *Node) AddNonvoter(id, addr string) error {
	return mapRaftErr(n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error())
}

// Promote makes a server (new or non-voting) a voter.
func (n *Node) Promote(id, addr string) error {
	return mapRaftErr(n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error())
}

// Demote takes the vote from a server, which keeps replicating.
func (n *Node) Demote(id string) error {
	return mapRaftErr(n.raft.DemoteVoter(raft.ServerID(id), 0, 10*time.Second).Error())
}

// Remove takes a server out of the group.
func (n *Node) Remove(id string) error {
	return mapRaftErr(n.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error())
}

// Snapshot takes a snapshot now and compacts the log (tests, operators).
func (n *Node) Snapshot() error {
	return n.raft.Snapshot().Error()
}

// Shutdown stops Raft and closes the stores. It does not leave the group.
// It is safe to call more than once.
func (n *Node) Shutdown() error {
	var err error
	n.shutdownOnce.Do(func() {
		close(n.stop)
		err = n.raft.Shutdown().Error()
		n.wg.Wait()
		n.closeAll()
	})
	return err
}

func mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return err
}
