// Package state is Shoal's replicated state machine: a revisioned object
// store that every agent holds in full.
//
// Store.Apply takes one committed Raft entry (its index and the decoded
// Command) and changes the store; it is deterministic, reading no clock and
// no randomness (times and uids travel in the Command). Every object carries
// the log index of its last change as its resource_version, so a revision is
// simply a log index.
//
// Besides apply, the package owns the reads (get and list by label
// selector), compare-and-swap and multi-object transactions, the watch ring
// of recent events, waiting for a revision (read-your-writes), and snapshot
// encoding and restore. It must not know about Raft, gRPC, manifests or
// Kubernetes types: objects are opaque beyond their identity fields.
package state
