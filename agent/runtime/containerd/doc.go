// Package containerd is the production runtime driver: each container
// attempt is a containerd container and task, run by runc from an image,
// with cgroup limits, in a network namespace per pod attached by CNI. It
// talks to a containerd daemon (Config.Address, Debian's 1.6 works) in one
// containerd namespace per agent (Config.Namespace) and treats everything
// in that namespace as its own.
//
// It owns the files under Config.Dir, its containerd namespace and the
// pods' CNI attachments, and nothing else:
//
//	Dir/pods/<pod uid>/                    the pod's directory
//	        pod.json                       the pod's network: ip, netns, CNI id (tmp+rename)
//	        net.ns                         the pod's network namespace (a bind mount)
//	        resolv.conf, etc.hosts         mounted read-only at /etc/resolv.conf, /etc/hosts
//	Dir/pods/<pod uid>/<container>/
//	        <attempt>.log, <attempt>.log.1 stdout and stderr of the attempt
//	Dir/cni/                               the conflists, CNI's cache, host-local's leases
//	Dir/fifo/                              fifos of running Execs
//
// Pod-level files have a dot in their names, which container names (DNS
// labels) never have. The file layout, the log files and the bookkeeping
// of attempts (statuses, Events, the Stop sequence) are the process
// driver's, shared in packages under agent/runtime/internal, so Logs works
// the same (the shim appends to the file; rotation is copy-truncate).
//
// Each attempt is one containerd container named "<name>-<attempt>-<hash>"
// (its snapshot has the same key) whose labels are the attempt's record:
// shoal.pod.uid, .pod.namespace, .pod.name, .container, .attempt, .image,
// .started-at, and once it has exited .exit-code, .finished-at, .reason and
// .message. Nothing else is kept on disk about attempts.
//
// Start:
//
//  1. The image is looked up as written and normalized ("busybox" is
//     docker.io/library/busybox:latest) and pulled as ImagePullPolicy says
//     (empty: IfNotPresent); pull errors wrap runtime.ErrImagePull. Images
//     can also be loaded without a registry with ImportImage. An image
//     missing here is first fetched from a peer node that holds it
//     (Config.Peers, peer.go): client.Pull with a remotes.Resolver over
//     the peers, so containerd verifies every blob's digest on commit; a
//     failed fetch keeps its lease (an hour) so the next one resumes
//     partial blobs, and drops whole blobs that failed their check. Only
//     then is the registry tried. ListImages, ResolveImage and ReadContent
//     serve this node's images to the peers.
//  2. On the pod's first container (or SetupPodNetwork, runtime.PodNetwork)
//     the pod's network namespace is created (unshare on a locked thread,
//     bind-mounted at net.ns) and attached with CNI: loopback, then bridge
//     (Config.Bridge, gateway on the bridge, ipMasq when iptables exists)
//     with host-local IPAM over Config.PodCIDR. All containers of the pod
//     join it, so they reach each other on localhost.
//  3. The OCI spec is containerd's default plus the image config; Command
//     replaces the entrypoint, Args the cmd (Kubernetes' rules); Env is
//     added to the image's env; a relative WorkingDir is taken from /;
//     MemoryBytes becomes the memory limit, CPUMillis a CFS quota (and cpu
//     shares); hostname is the pod name.
//  4. The task is created with stdout and stderr appended to the log file
//     by the shim, waited on before it is started, then started. A start
//     that fails deletes the task, the container with its snapshot, the log
//     and, if this start made it and the pod has no other attempt, the
//     pod's network.
//
// Exits: a goroutine per running attempt waits on its task. On exit the
// driver reads the task's cgroup OOM-kill counter (an exit after an OOM
// kill is Reason OOMKilled), writes the exit labels, deletes the task
// (which flushes the log and removes the cgroup), then publishes the
// status and sends it on Events. Stop sends SIGTERM to every process of the
// task, then SIGKILL after grace. Exec runs an extra process in the task.
// Remove deletes the container WithSnapshotCleanup and the logs; RemovePod
// does that for every attempt of the pod, then CNI DEL, unmounts the
// namespace and deletes the pod's directory.
//
// Re-adoption: tasks are children of containerd's shims, not of the agent,
// so they run on when the agent dies. New reads pod.json of every pod
// whose namespace is still mounted, then lists the namespace's containers:
// an attempt with exit labels is exited; one whose task runs is watched
// again; one whose task has stopped is recorded now (exit code and OOM kill
// from the stopped task) and is reported exited, not sent on Events; one
// with no task and no exit labels (the host rebooted) is exited with Reason
// Unknown and ExitCode -1; one whose task was created but never started
// (the agent died inside Start) is deleted. A pod.json whose namespace is
// no longer mounted has its address released.
//
// The package must not decide restarts, probes or back-off: that is the
// kubelet's job. Close stops the driver's goroutines and never the
// containers.
package containerd
