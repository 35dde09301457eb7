// Package proxy is Shoal's userspace service proxy: every agent runs one,
// listening on each service port's ClusterIP, node ports and external IPs
// and forwarding to the service's Ready endpoints. There is no iptables
// and no eBPF: a `local` route makes the whole service CIDR an address of
// the node (EnsureLocalRoute), so a listener bound to a ClusterIP receives
// what is sent to it, from the host or from pods behind a bridge.
//
// Sync takes the whole table (Build computes it from services and their
// endpoints) and reconciles listeners with it: new frontends are opened,
// gone ones closed, and the balancer of a service port is updated in
// place, so connection counts and client affinity survive an update.
// Listeners set SO_REUSEPORT, so several agents on one host (a dev
// cluster) share a ClusterIP:port, and IP_FREEBIND, so a listener on an
// external IP not (yet) on the node can open.
//
// TCP: each accepted connection is dialled to a backend the balancer
// picks; a failed dial is retried on another backend within the same
// client connection. Bytes are copied with io.Copy between the two
// *net.TCPConn, which splices in the kernel on Linux. Half-closes are
// passed on. A backend leaving the table gets no new connections; those
// open to it run to their end (draining).
//
// UDP: each client address is a flow with its own connected socket to one
// backend; replies go back from the frontend's address. A flow ends after
// Config.UDPIdleTimeout without traffic either way, or when the backend
// refuses (ICMP port unreachable).
//
// Balancing (per service port): round robin by default, least connections
// with the shoal.dev/load-balancer annotation, ClientIP affinity from
// spec.sessionAffinity, and weighted groups of pods by label value with
// shoal.dev/weights (smooth weighted round robin between groups, so a
// 90/10 split is exact over every ten connections).
package proxy
