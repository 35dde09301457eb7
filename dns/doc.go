// Package dns owns the cluster DNS server that every Shoal agent runs.
//
// Names in the cluster domain (services, headless endpoints, pods, and the
// reverse names of cluster and pod IPs) are answered from an in-memory
// snapshot, a *Records, with no network hop: the agent rebuilds the snapshot
// from its local replica and swaps it in with Server.SetRecords. Everything
// else is forwarded to the node's upstream resolvers, through a small cache.
//
// The answers follow the Kubernetes DNS specification
// (https://github.com/kubernetes/dns/blob/master/docs/specification.md).
// Building the snapshot and answering a question are pure functions, table
// tested and fuzzed; the Server is a thin github.com/miekg/dns layer around
// them.
//
// The package must not import agent or cmd: it is handed values, it does not
// watch the cluster itself.
package dns
