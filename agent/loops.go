package agent

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// every runs fn at once and then at each tick or mesh change until ctx ends.
func (a *Agent) every(ctx context.Context, d time.Duration, onMeshChange bool, fn func(context.Context) bool) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	var changed <-chan struct{}
	if onMeshChange {
		ch, cancel := a.mesh.Subscribe()
		defer cancel()
		changed = ch
	}
	for {
		if done := fn(ctx); done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-changed:
		}
	}
}

// joinLoop joins the --join addresses and the peers this agent last saw
// (kept in the data dir), and keeps trying while it sees nobody else, so
// agents may start in any order and a restarted agent, the seed included,
// finds its cluster again.
func (a *Agent) joinLoop(ctx context.Context) {
	self := a.mesh.Local().Address()
	var saved []string
	var lastRejoin time.Time
	a.every(ctx, 2*time.Second, true, func(context.Context) bool {
		alive := a.mesh.Alive()
		if len(alive) > 1 {
			saved = a.savePeers(alive, saved)
			// Gossip can declare a live agent dead when it misses probes
			// (an overloaded machine); memberlist heals that at its next
			// push-pull, but a Raft server missing from gossip is worth
			// contacting directly sooner.
			if missing := a.raftPeersNotIn(alive); len(missing) > 0 && time.Since(lastRejoin) >= 10*time.Second {
				lastRejoin = time.Now()
				if n, err := a.mesh.Join(missing); n > 0 {
					a.log.Info("rejoined raft servers missing from gossip", "contacted", n, "of", len(missing))
				} else {
					a.log.Debug("raft servers missing from gossip did not answer", "targets", strings.Join(missing, ","), "err", err)
				}
			}
			return false
		}
		var targets []string
		for _, t := range append(append(slices.Clone(a.cfg.Join), loadPeers(a.cfg.DataDir)...), a.raftPeers()...) {
			if t != self && t != a.cfg.BindAddr && !slices.Contains(targets, t) {
				targets = append(targets, t)
			}
		}
		if len(targets) == 0 {
			return false
		}
		n, err := a.mesh.Join(targets)
		if n == 0 {
			a.log.Debug("join failed, will retry", "targets", strings.Join(targets, ","), "err", err)
			return false
		}
		a.log.Info("joined gossip mesh", "contacted", n)
		return false
	})
}

// raftPeersNotIn returns the gossip addresses of the servers in the Raft
// configuration that gossip does not list among alive (nor as having left
// on purpose): the address gossip last knew, else the Raft host with this
// agent's gossip port.
func (a *Agent) raftPeersNotIn(alive []gossip.Member) []string {
	servers, err := a.node.Servers()
	if err != nil {
		return nil
	}
	known := map[string]gossip.Member{}
	for _, m := range a.mesh.Members() {
		known[m.Name] = m
	}
	var out []string
	for _, s := range servers {
		if s.ID == a.cfg.Name || slices.ContainsFunc(alive, func(m gossip.Member) bool { return m.Name == s.ID }) {
			continue
		}
		if m, ok := known[s.ID]; ok {
			if m.Status != gossip.StatusLeft {
				out = append(out, m.Address())
			}
			continue
		}
		if host, _, err := net.SplitHostPort(s.Address); err == nil {
			out = append(out, net.JoinHostPort(host, strconv.Itoa(a.cfg.GossipPort)))
		}
	}
	return out
}

// raftPeers are the gossip addresses of the other servers in the Raft
// configuration (their Raft host with this agent's gossip port): a
// restarted agent finds its cluster through them even when its --join seed
// is itself and it saved no peers.
func (a *Agent) raftPeers() []string {
	servers, err := a.node.Servers()
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range servers {
		if s.ID == a.cfg.Name {
			continue
		}
		if host, _, err := net.SplitHostPort(s.Address); err == nil {
			out = append(out, net.JoinHostPort(host, strconv.Itoa(a.cfg.GossipPort)))
		}
	}
	return out
}

// bootstrapLoop gives birth to the Raft group. Once BootstrapExpect agents
// that expect a bootstrap see each other by gossip, and none of them
// belongs to a group already, the one with the lowest name bootstraps with
// the BootstrapExpect lowest names; the others receive the configuration
// from it. The candidate set must stay the same for a few rounds first, so
// that late gossip does not make two agents pick different sets.
func (a *Agent) bootstrapLoop(ctx context.Context) {
	var lastSet []string
	stable := 0
	a.every(ctx, 250*time.Millisecond, false, func(ctx context.Context) bool {
		if a.node.HasState() {
			a.setMeta(func(m *pb.NodeMeta) { m.RaftBootstrapped = true })
			return true
		}
		expect := a.cfg.BootstrapExpect
		if expect == 0 {
			return false
		}
		var cands []gossip.Member
		for _, m := range a.mesh.Alive() {
			if m.Meta == nil {
				continue
			}
			if m.Meta.GetRaftBootstrapped() {
				return false // a group exists: wait for its leader to add us
			}
			if m.Meta.GetBootstrapExpect() > 0 {
				if int(m.Meta.GetBootstrapExpect()) != expect {
					a.log.Warn("agents disagree on --bootstrap-expect", "peer", m.Name, "peer_expect", m.Meta.GetBootstrapExpect(), "expect", expect)
				}
				cands = append(cands, m)
			}
		}
		if len(cands) < expect {
			return false
		}
		slices.SortFunc(cands, func(x, y gossip.Member) int { return strings.Compare(x.Name, y.Name) })
		cands = cands[:expect]
		set := make([]string, len(cands))
		for i, c := range cands {
			set[i] = c.Name
		}
		if slices.Equal(set, lastSet) {
			stable++
		} else {
			lastSet, stable = set, 0
		}
		if stable < 3 || set[0] != a.cfg.Name {
			return false
		}
		servers := make([]consensus.Server, len(cands))
		for i, c := range cands {
			servers[i] = consensus.Server{ID: c.Name, Address: c.Meta.GetRaftAddress()}
		}
		a.log.Info("bootstrapping raft", "voters", strings.Join(set, ","))
		if err := a.node.Bootstrap(servers); err != nil {
			a.log.Error("bootstrap failed", "err", err)
			return false
		}
		a.setMeta(func(m *pb.NodeMeta) { m.RaftBootstrapped = true })
		return true
	})
}

func (a *Agent) setMeta(change func(*pb.NodeMeta)) {
	a.metaMu.Lock()
	defer a.metaMu.Unlock()
	next := cloneMeta(a.meta)
	change(next)
	if err := a.mesh.UpdateMeta(next); err != nil {
		a.log.Warn("update gossip facts", "err", err)
		return
	}
	a.meta = next
}

// autopilotLoop keeps the voters healthy while this agent leads.
func (a *Agent) autopilotLoop(ctx context.Context) {
	missingSince := map[string]time.Time{}
	apCfg := consensus.AutopilotConfig{Voters: a.cfg.Voters, DeadServerGrace: a.cfg.DeadServerGrace}
	a.every(ctx, time.Second, true, func(ctx context.Context) bool {
		if !a.node.IsLeader() {
			clear(missingSince)
			return false
		}
		peers, joiners, err := a.autopilotView(missingSince, time.Now())
		if err != nil {
			a.log.Warn("autopilot", "err", err)
			return false
		}
		for _, act := range consensus.Plan(apCfg, peers, joiners) {
			if ctx.Err() != nil || !a.node.IsLeader() {
				return false
			}
			var err error
			switch act.Kind {
			case consensus.AddNonvoter:
				err = a.node.AddNonvoter(act.ID, act.Address)
			case consensus.PromoteVoter:
				err = a.node.Promote(act.ID, act.Address)
			case consensus.DemoteVoter:
				err = a.node.Demote(act.ID)
			case consensus.RemoveServer:
				err = a.node.Remove(act.ID)
			}
			if err != nil {
				a.log.Warn("autopilot action failed", "action", act.String(), "err", err)
				return false
			}
			a.log.Info("autopilot", "action", act.String())
		}
		return false
	})
}

// autopilotView joins the Raft configuration with what gossip says.
func (a *Agent) autopilotView(missingSince map[string]time.Time, now time.Time) ([]consensus.Peer, []consensus.Joiner, error) {
	servers, err := a.node.Servers()
	if err != nil {
		return nil, nil, err
	}
	members := map[string]gossip.Member{}
	for _, m := range a.mesh.Members() {
		members[m.Name] = m
	}
	leader, _ := a.node.Leader()
	inConfig := map[string]bool{}
	var peers []consensus.Peer
	for _, s := range servers {
		inConfig[s.ID] = true
		p := consensus.Peer{ID: s.ID, Address: s.Address, Voter: s.Voter, Leader: s.ID == leader}
		m, known := members[s.ID]
		switch {
		case s.ID == a.cfg.Name:
			p.Alive = true
		case known && m.IsAlive():
			p.Alive = true
		case known:
			p.DeadFor = now.Sub(m.Since)
		default:
			// Gossip has not heard of it (yet): count from when we noticed.
			if _, ok := missingSince[s.ID]; !ok {
				missingSince[s.ID] = now
			}
			p.DeadFor = now.Sub(missingSince[s.ID])
		}
		if p.Alive || known {
			delete(missingSince, s.ID)
		}
		peers = append(peers, p)
	}
	var joiners []consensus.Joiner
	for _, m := range members {
		if inConfig[m.Name] || !m.IsAlive() || m.Meta.GetRaftAddress() == "" {
			continue
		}
		joiners = append(joiners, consensus.Joiner{ID: m.Name, Address: m.Meta.GetRaftAddress()})
	}
	return peers, joiners, nil
}

// leaderLoop runs the leader's housekeeping: the default namespace exists.
// It polls often (a local lookup) so that a new cluster has it within
// moments of electing its first leader.
func (a *Agent) leaderLoop(ctx context.Context) {
	a.every(ctx, 100*time.Millisecond, false, func(ctx context.Context) bool {
		if !a.node.IsLeader() {
			return false
		}
		if o, _ := a.node.Store().Get(state.NamespaceKind, "", "default"); o != nil {
			return false
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := a.node.Apply(cctx, &pb.Command{TimeUnixNano: time.Now().UnixNano(), Ops: []*pb.Op{{
			Type: pb.Op_PUT, MustCreate: true, NewUid: newUID(),
			Object: &pb.Object{Kind: state.NamespaceKind, ApiVersion: "v1", Name: "default", Spec: []byte("{}")},
		}}})
		if err == nil && res.Err == nil {
			a.log.Info("created namespace default")
		}
		return false
	})
}
