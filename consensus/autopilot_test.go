package consensus

import (
	"slices"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	cfg := AutopilotConfig{DeadServerGrace: 30 * time.Second}
	live := func(id string, voter bool) Peer {
		return Peer{ID: id, Address: id + ":7947", Voter: voter, Alive: true}
	}
	dead := func(id string, voter bool, for_ time.Duration) Peer {
		return Peer{ID: id, Address: id + ":7947", Voter: voter, DeadFor: for_}
	}
	leader := func(p Peer) Peer { p.Leader = true; return p }
	tests := []struct {
		name    string
		cfg     AutopilotConfig
		peers   []Peer
		joiners []Joiner
		want    []string
	}{
		{
			name:  "steady 3 voters 2 non-voters",
			peers: []Peer{leader(live("n1", true)), live("n2", true), live("n3", true), live("n4", false), live("n5", false)},
			want:  nil,
		},
		{
			name:    "joiners enter as non-voters",
			peers:   []Peer{leader(live("n1", true)), live("n2", true), live("n3", true)},
			joiners: []Joiner{{ID: "n5", Address: "n5:7947"}, {ID: "n4", Address: "n4:7947"}},
			want:    []string{"add-nonvoter n4", "add-nonvoter n5"},
		},
		{
			name:  "a dead voter is replaced by a live non-voter at once",
			peers: []Peer{leader(live("n2", true)), dead("n1", true, time.Second), live("n3", true), live("n4", false), live("n5", false)},
			want:  []string{"promote n4"},
		},
		{
			name:  "a voter dead past the grace is removed after the promotion",
			peers: []Peer{leader(live("n2", true)), dead("n1", true, time.Minute), live("n3", true), live("n4", false)},
			want:  []string{"promote n4", "remove n1"},
		},
		{
			name:  "dead non-voter removed after the grace only",
			peers: []Peer{leader(live("n1", true)), live("n2", true), live("n3", true), dead("n4", false, time.Minute), dead("n5", false, time.Second)},
			want:  []string{"remove n4"},
		},
		{
			name:  "a returning voter makes one too many: demote the highest non-leader",
			peers: []Peer{live("n1", true), live("n2", true), leader(live("n3", true)), live("n4", true), live("n5", false)},
			want:  []string{"demote n4"},
		},
		{
			name:  "never remove a voter when that loses the live quorum",
			peers: []Peer{leader(live("n1", true)), dead("n2", true, time.Minute), dead("n3", true, time.Minute)},
			want:  nil,
		},
		{
			name:  "one dead voter of 3 with nobody to promote: removed after grace, quorum kept",
			peers: []Peer{leader(live("n1", true)), live("n2", true), dead("n3", true, time.Minute)},
			want:  []string{"remove n3"},
		},
		{
			name:  "7 live servers want 5 voters",
			peers: []Peer{leader(live("n1", true)), live("n2", true), live("n3", true), live("n4", false), live("n5", false), live("n6", false), live("n7", false)},
			want:  []string{"promote n4", "promote n5"},
		},
		{
			name:  "explicit voter count",
			cfg:   AutopilotConfig{Voters: 1, DeadServerGrace: time.Minute},
			peers: []Peer{leader(live("n1", true)), live("n2", true), live("n3", true)},
			want:  []string{"demote n3", "demote n2"},
		},
		{
			name:  "never more voters than live servers",
			peers: []Peer{leader(live("n1", true)), live("n2", false)},
			want:  []string{"promote n2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.cfg.DeadServerGrace != 0 {
				c = tt.cfg
			}
			var got []string
			for _, a := range Plan(c, tt.peers, tt.joiners) {
				got = append(got, a.Kind.String()+" "+a.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("plan %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPlanNeverLosesQuorum applies every plan over many random-ish
// configurations and checks the live-quorum invariant after each action.
func TestPlanNeverLosesQuorum(t *testing.T) {
	cfg := AutopilotConfig{DeadServerGrace: 10 * time.Second}
	for mask := 0; mask < 1<<10; mask++ {
		var peers []Peer
		for i := 0; i < 5; i++ {
			p := Peer{ID: string(rune('a' + i)), Voter: mask&(1<<i) != 0, Alive: mask&(1<<(i+5)) != 0}
			if !p.Alive {
				p.DeadFor = time.Minute
			}
			peers = append(peers, p)
		}
		if !quorum(peers) {
			continue // nothing can commit; the autopilot cannot act anyway
		}
		for i := range peers {
			if peers[i].Alive && peers[i].Voter {
				peers[i].Leader = true
				break
			}
		}
		for _, a := range Plan(cfg, peers, nil) {
			switch a.Kind {
			case PromoteVoter:
				peers = setVoter(peers, a.ID, true)
			case DemoteVoter:
				peers = setVoter(peers, a.ID, false)
			case RemoveServer:
				peers = slices.DeleteFunc(peers, func(p Peer) bool { return p.ID == a.ID })
			}
			if !quorum(peers) {
				t.Fatalf("mask %b: %v loses the live quorum: %+v", mask, a, peers)
			}
		}
	}
}

func setVoter(peers []Peer, id string, v bool) []Peer {
	for i := range peers {
		if peers[i].ID == id {
			peers[i].Voter = v
		}
	}
	return peers
}

func quorum(peers []Peer) bool {
	voters, live := 0, 0
	for _, p := range peers {
		if p.Voter {
			voters++
			if p.Alive {
				live++
			}
		}
	}
	return voters > 0 && live >= voters/2+1
}
