// Package consensus runs Shoal's Raft group: hashicorp/raft with
// raft-boltdb storage and file snapshots under the data dir, feeding the
// state machine of package state on every node.
//
// It owns proposing writes (leader only), read indexes for linearizable
// reads, configuration changes, and the autopilot's pure planner (Plan),
// which decides promotions, demotions and removals from the Raft
// configuration and gossip health. It must not talk to gossip, gRPC or the
// CLI itself: the agent feeds it what gossip says and forwards writes to
// the leader.
package consensus
