package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/gossip"
	"github.com/shoal-dev/shoal/object"
)

const (
	// quietFor is how long the leader's revision must stay put, with every
	// replica at it, before a measurement starts.
	quietFor   = time.Second
	quietLimit = 2 * time.Minute
	pollEvery  = 100 * time.Millisecond
	// progressEvery is how often a long wait says where it stands.
	progressEvery = 15 * time.Second
)

// cluster is the in-process agents. Agent i is named n%03d and binds
// 127.0.150.(i+2).
type cluster struct {
	agents []*agent.Agent
	cfgs   []agent.Config
	cancel context.CancelFunc
	done   chan struct{} // one value per agent whose Run returned
}

func agentName(i int) string { return fmt.Sprintf("n%03d", i+1) }
func agentIP(i int) string   { return fmt.Sprintf("127.0.150.%d", i+2) }

// advertised is a mock gossip transport that advertises the agent's own IP
// (with the mock port) instead of the mock network's 127.0.0.1, so that a
// member's gossip address is the address its forwarded gRPC calls come
// from, as in a real cluster: the leader recognises them as coming from a
// fellow agent. The mock network routes by node name, so the address is
// only what peers see.
type advertised struct {
	*memberlist.MockTransport
	ip net.IP
}

func (t *advertised) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	_, p, err := t.MockTransport.FinalAdvertiseAddr(ip, port)
	return t.ip, p, err
}

// startCluster creates every agent (listeners bound, not yet running) and
// then runs them all.
func startCluster(cfg config, dir string, logTo io.Writer) (*cluster, error) {
	n := cfg.agents
	var mnet memberlist.MockNetwork
	gossipT := make([]*memberlist.MockTransport, n)
	raftT := make([]*raft.InmemTransport, n)
	// Every transport exists before any agent starts: the mock network's
	// maps are not safe to grow while others route through them.
	for i := range n {
		gossipT[i] = mnet.NewTransport(agentName(i))
		_, raftT[i] = raft.NewInmemTransport(raft.ServerAddress(agentName(i)))
	}
	for i := range n {
		for j := range n {
			if i != j {
				raftT[i].Connect(raftT[j].LocalAddr(), raftT[j])
			}
		}
	}
	seedIP, seedPort, err := gossipT[0].FinalAdvertiseAddr("", 0)
	if err != nil {
		return nil, err
	}
	seed := net.JoinHostPort(seedIP.String(), fmt.Sprint(seedPort))

	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{cancel: cancel, done: make(chan struct{}, n)}
	var logger *slog.Logger
	if cfg.log {
		logger = slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	for i := range n {
		ac := agent.DefaultConfig()
		ac.Name = agentName(i)
		ac.BindAddr = agentIP(i)
		ac.DataDir = filepath.Join(dir, ac.Name)
		ac.BootstrapExpect = 3
		ac.Voters = cfg.voters
		ac.Runtime = "sim"
		ac.CPUMillis = agentCPUMillis
		ac.MemoryBytes = agentMemoryBytes
		ac.RaftTransport = raftT[i]
		ac.RaftInMemory = true
		ac.DNSPort = -1 // no services here: spare a hundred DNS servers
		ac.GossipTransport = &advertised{MockTransport: gossipT[i], ip: net.ParseIP(ac.BindAddr)}
		// A hundred agents on two cores miss the LAN default's 250 ms probe
		// timeout whenever placement saturates the CPU, and gossip then
		// declares live agents dead, which stalls their claims. The
		// simulated machines probe four times slower, with six times the
		// timeout (memberlist's LAN defaults are 1 s and 500 ms).
		ac.GossipTiming = func(g *gossip.Config) {
			g.ProbeInterval, g.ProbeTimeout, g.SuspicionMult = 2*time.Second, 1500*time.Millisecond, 4
			g.GossipInterval, g.PushPullInterval = 200*time.Millisecond, 10*time.Second
		}
		if i > 0 {
			ac.Join = []string{seed}
		}
		ac.Logger = logger
		a, err := agent.New(ac)
		if err != nil {
			cancel()
			c.stop(10 * time.Second)
			return nil, fmt.Errorf("start agent %s on %s: %w", ac.Name, ac.BindAddr, err)
		}
		c.agents = append(c.agents, a)
		c.cfgs = append(c.cfgs, ac)
	}
	for _, a := range c.agents {
		go func() {
			_ = a.Run(ctx)
			c.done <- struct{}{}
		}()
	}
	return c, nil
}

// stop ends every agent and waits up to d; it returns how many had not
// stopped by then.
func (c *cluster) stop(d time.Duration) int {
	c.cancel()
	timeout := time.After(d)
	left := len(c.agents)
	for left > 0 {
		select {
		case <-c.done:
			left--
		case <-timeout:
			return left
		}
	}
	return 0
}

// leader is the agent that leads now, or nil.
func (c *cluster) leader() *agent.Agent {
	for _, a := range c.agents {
		if a.Node().IsLeader() {
			return a
		}
	}
	return nil
}

// waitLeader waits for a leader: under this much load on two cores a
// starved leader can miss its heartbeats and lose the lead for a moment.
func (c *cluster) waitLeader(ctx context.Context) (*agent.Agent, error) {
	var l *agent.Agent
	err := waitUntil(ctx, time.Minute, func() error {
		if l = c.leader(); l == nil {
			return errors.New("no leader")
		}
		return nil
	})
	return l, err
}

// configOf is the config agent a started with.
func (c *cluster) configOf(a *agent.Agent) agent.Config {
	for i, x := range c.agents {
		if x == a {
			return c.cfgs[i]
		}
	}
	return agent.Config{}
}

// name is agent a's name.
func (c *cluster) name(a *agent.Agent) string { return c.configOf(a).Name }

// waitFormed waits until one leader has every agent in its Raft
// configuration with the voters the autopilot aims at, every Node object
// exists and is Ready on every replica, the default namespace exists, and
// every agent sees every other alive by gossip (so that all agents claim
// pods over the same set).
func (c *cluster) waitFormed(ctx context.Context, limit time.Duration, voters int, progress io.Writer) error {
	start, said := time.Now(), time.Now()
	return waitUntil(ctx, limit, func() error {
		err := c.formed(voters)
		if err != nil && time.Since(said) >= progressEvery {
			fmt.Fprintf(progress, "  forming for %.0fs: %v\n", time.Since(start).Seconds(), err)
			said = time.Now()
		}
		return err
	})
}

func (c *cluster) formed(voters int) error {
	l := c.leader()
	if l == nil {
		return errors.New("no leader")
	}
	servers, err := l.Node().Servers()
	if err != nil {
		return err
	}
	v := 0
	for _, s := range servers {
		if s.Voter {
			v++
		}
	}
	if len(servers) != len(c.agents) || v != voters {
		return fmt.Errorf("raft has %d servers (%d voters), want %d (%d voters)", len(servers), v, len(c.agents), voters)
	}
	store := l.Node().Store()
	if o, _ := store.Get(state.NamespaceKind, "", "default"); o == nil {
		return errors.New("no namespace default")
	}
	nodes, _ := store.List("Node", "", nil)
	ready := 0
	for _, o := range nodes {
		var node corev1.Node
		if object.Decode(o, &node) == nil && nodeReady(&node) {
			ready++
		}
	}
	if ready != len(c.agents) {
		return fmt.Errorf("%d of %d Nodes exist, %d Ready", len(nodes), len(c.agents), ready)
	}
	for _, a := range c.agents {
		if alive := len(a.Mesh().Alive()); alive != len(c.agents) {
			return fmt.Errorf("%s sees %d agents alive by gossip, want %d", c.name(a), alive, len(c.agents))
		}
		if got, _ := a.Node().Store().List("Node", "", nil); len(got) != len(c.agents) {
			return fmt.Errorf("%s's replica has %d Nodes, want %d", c.name(a), len(got), len(c.agents))
		}
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitQuiet waits until nothing has been written for quietFor and every
// replica has applied what the leader has, so that one measurement does
// not pay for the tail of the one before.
func (c *cluster) waitQuiet(ctx context.Context, limit time.Duration) error {
	var lastRev uint64
	var since time.Time
	return waitUntil(ctx, limit, func() error {
		l := c.leader()
		if l == nil {
			return errors.New("no leader")
		}
		rev := l.Node().Store().Revision()
		if rev != lastRev {
			lastRev, since = rev, time.Now()
		}
		for _, a := range c.agents {
			if r := a.Node().Store().Revision(); r != rev {
				return fmt.Errorf("%s's replica at revision %d, the leader's at %d", c.name(a), r, rev)
			}
		}
		if d := time.Since(since); d < quietFor {
			return fmt.Errorf("last write %s ago", d.Round(time.Millisecond))
		}
		return nil
	})
}

// waitUntil polls fn every pollEvery until it returns nil, ctx ends or
// limit passes; the error then carries fn's last answer.
func waitUntil(ctx context.Context, limit time.Duration, fn func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(pollEvery):
		}
	}
}
