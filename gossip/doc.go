// Package gossip is the memberlist mesh that every Shoal agent joins.
//
// It owns three things:
//
//   - membership: which agents exist, with their address and status (alive,
//     dead, left), including dead and left agents until they rejoin or are
//     forgotten, so that callers can see how long a peer has been gone;
//   - failure detection: a node is dead when memberlist (SWIM with Lifeguard)
//     says so; nothing else in Shoal runs its own heartbeat;
//   - node facts: a small shoalpb.NodeMeta (addresses, capacity, labels,
//     bootstrap state, pod CIDR) that each agent advertises and updates.
//
// It must not do anything else: no Raft, no writes to the replicated state,
// no scheduling decisions. Callers (consensus autopilot, node lifecycle,
// scheduler) read Members, Alive and Events and act on them themselves.
//
// The package starts no goroutines of its own; memberlist's goroutines are
// owned by the Mesh and stop on Shutdown.
package gossip
