package consensus

import (
	"fmt"
	"slices"
	"time"
)

// Peer is what the autopilot knows of one server: its place in the Raft
// configuration and what gossip says of its health.
type Peer struct {
	ID      string
	Address string // Raft address
	Voter   bool
	Alive   bool
	// DeadFor is how long gossip has seen it dead or left (0 when alive).
	DeadFor time.Duration
	Leader  bool
}

// Joiner is a live agent that gossip sees but the Raft configuration lacks.
type Joiner struct {
	ID      string
	Address string
}

// ActionKind is one change to the Raft configuration.
type ActionKind int

const (
	AddNonvoter ActionKind = iota
	PromoteVoter
	DemoteVoter
	RemoveServer
)

func (k ActionKind) String() string {
	return [...]string{"add-nonvoter", "promote", "demote", "remove"}[k]
}

// Action is one planned configuration change.
type Action struct {
	Kind    ActionKind
	ID      string
	Address string
	Reason  string
}

func (a Action) String() string { return fmt.Sprintf("%s %s (%s)", a.Kind, a.ID, a.Reason) }

// AutopilotConfig holds the autopilot's targets.
type AutopilotConfig struct {
	// Voters is the number of voters to keep; 0 picks it by cluster size
	// (3, or 5 from 7 live servers up).
	Voters int
	// DeadServerGrace is how long a server may stay dead before it is
	// removed from the configuration.
	DeadServerGrace time.Duration
}

// DesiredVoters is the voter count the autopilot aims at for a cluster with
// live servers alive: never more than are alive.
func (c AutopilotConfig) DesiredVoters(alive int) int {
	want := c.Voters
	if want == 0 {
		want = 3
		if alive >= 7 {
			want = 5
		}
	}
	return min(want, alive)
}

// Plan returns the configuration changes that move the group toward its
// target, in the order to make them. It is pure: the caller applies the
// actions one at a time and plans again on the new configuration.
//
// Rules: live joiners enter as non-voters; live non-voters are promoted
// while fewer than the desired voters are alive; surplus live voters (never
// the leader) are demoted; servers dead for longer than the grace period are
// removed. No action leaves the voters without a live quorum.
func Plan(cfg AutopilotConfig, peers []Peer, joiners []Joiner) []Action {
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b Peer) int { return cmpStr(a.ID, b.ID) })
	joiners = slices.Clone(joiners)
	slices.SortFunc(joiners, func(a, b Joiner) int { return cmpStr(a.ID, b.ID) })

	var actions []Action
	for _, j := range joiners {
		actions = append(actions, Action{Kind: AddNonvoter, ID: j.ID, Address: j.Address, Reason: "new live agent"})
	}

	alive := len(joiners)
	liveVoters := 0
	for _, p := range peers {
		if p.Alive {
			alive++
			if p.Voter {
				liveVoters++
			}
		}
	}
	want := cfg.DesiredVoters(alive)

	// Promote first, so a replacement votes before a dead voter goes.
	if liveVoters < want {
		for i := range peers {
			p := &peers[i]
			if liveVoters >= want {
				break
			}
			if p.Alive && !p.Voter {
				actions = append(actions, Action{Kind: PromoteVoter, ID: p.ID, Address: p.Address,
					Reason: fmt.Sprintf("%d live voters, want %d", liveVoters, want)})
				p.Voter = true
				liveVoters++
			}
		}
	}

	// Demote surplus live voters, highest id first, never the leader.
	if liveVoters > want {
		for i := len(peers) - 1; i >= 0 && liveVoters > want; i-- {
			p := &peers[i]
			if p.Alive && p.Voter && !p.Leader {
				if !hasQuorumWithout(peers, p.ID) {
					continue
				}
				actions = append(actions, Action{Kind: DemoteVoter, ID: p.ID, Address: p.Address,
					Reason: fmt.Sprintf("%d live voters, want %d", liveVoters, want)})
				p.Voter = false
				liveVoters--
			}
		}
	}

	// Remove servers dead past the grace period, keeping a live quorum.
	return append(actions, planRemovals(cfg, peers)...)
}

// planRemovals removes, one at a time, the servers dead past the grace
// period whose removal keeps a live quorum of voters.
func planRemovals(cfg AutopilotConfig, peers []Peer) []Action {
	for i, p := range peers {
		if p.Alive || p.Leader || p.DeadFor < cfg.DeadServerGrace {
			continue
		}
		if p.Voter && !hasQuorumWithout(peers, p.ID) {
			continue
		}
		rest := slices.Delete(slices.Clone(peers), i, i+1)
		return append([]Action{{Kind: RemoveServer, ID: p.ID, Address: p.Address,
			Reason: fmt.Sprintf("dead for %s", p.DeadFor.Round(time.Second))}}, planRemovals(cfg, rest)...)
	}
	return nil
}

// hasQuorumWithout reports whether the voters keep a live majority once id
// loses its vote (demoted or removed: the voter set is the same).
func hasQuorumWithout(peers []Peer, id string) bool {
	voters, live := 0, 0
	for _, p := range peers {
		if !p.Voter || p.ID == id {
			continue
		}
		voters++
		if p.Alive {
			live++
		}
	}
	return voters > 0 && live >= voters/2+1
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
