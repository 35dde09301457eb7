// Package sched owns pod placement: which node a pending pod should run on,
// and which live agent is the one to decide it.
//
// Place is a pure function of a Snapshot (every node with its labels, taints,
// allocatable resources, readiness as gossip and conditions report it, and
// the pods bound to it) and a pod. It filters nodes the way the Kubernetes
// scheduler's default plugins do (readiness, cordon, node name, taints,
// nodeSelector and node affinity, host ports, resources and pod count,
// topology spread constraints, inter-pod affinity and anti-affinity), scores
// the survivors (least- or most-allocated, preferred node and pod affinity,
// PreferNoSchedule taints, soft topology spread, and a spread of replicas of
// one controller) and returns the best node, or why every node was refused.
// Decision.Message renders that refusal as kubectl describe does.
//
// Fits is the subset of filters that depends on what is already bound to a
// node (ports, pod count, resources); the state machine uses it to re-check
// a proposed bind against fresh state, so a stale decision is refused.
//
// Claimer is rendezvous hashing of a pod uid over the live agents: every
// agent computes the same claimer from the same membership, and an agent
// leaving moves only the pods it claimed.
//
// The package must stay pure: no goroutines, clocks, randomness, logging or
// IO; it takes values and returns values, never modifies its inputs, and is
// table-tested and fuzzed. It must not import agent or cmd (or any package
// that does): the arrows point from agent to sched, never back.
package sched
