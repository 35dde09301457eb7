// Package process is the embedded default runtime driver: each container
// attempt is a host process started by the agent. There are no images, no
// isolation and no resource limits (CPUMillis and MemoryBytes are ignored;
// Ports are not opened by the driver, the pod's IP is the node's and the
// scheduler treats containerPorts as host ports).
//
// It owns the files under Config.Dir and nothing else:
//
//	Dir/pods/<pod uid>/                    the pod's directory
//	Dir/pods/<pod uid>/resolv.conf         the pod's ResolvConf (tmp+rename)
//	Dir/pods/<pod uid>/<container>/        the container's default working dir
//	        <attempt>.log, <attempt>.log.1 stdout and stderr of the attempt
//	        <attempt>.json                 the attempt's record (tmp+rename)
//
// How an attempt runs:
//
//   - argv is Command+Args; Command[0] is looked up in the PATH of the
//     container's Env, or the agent's PATH when Env has none (relative PATH
//     entries are skipped). The environment is exactly Env, plus the agent's
//     PATH when Env sets none, plus SHOAL_RESOLV_CONF (ResolvConfEnv) when
//     the spec has a ResolvConf.
//   - There is no mount namespace, so ResolvConf cannot become the
//     container's /etc/resolv.conf: it is written to the pod's directory at
//     each start and its absolute path is given in SHOAL_RESOLV_CONF
//     (replacing any value Env has). Programs that should use the cluster
//     DNS read that file (shoal-testapp does); the C resolver and Go's keep
//     reading the node's /etc/resolv.conf.
//   - The working dir is the container's directory, or WorkingDir: absolute
//     as is (it must exist), relative inside the pod's directory (created).
//   - The process is the leader of its own process group; signals from Stop
//     go to the whole group. When the leader exits, whatever is left in its
//     group is killed, as a container's processes die with its init.
//   - stdout and stderr are one log file, opened by the agent (O_APPEND) and
//     handed to the child as its fds, so the child keeps logging when the
//     agent dies. stdin is /dev/null.
//   - Children are not killed when the agent dies, by design: New scans Dir
//     and re-adopts every attempt whose pid is still alive with the same
//     process start time (/proc/<pid>/stat field 22, which guards against
//     pid reuse). An attempt that exited while no driver watched it is
//     reported exited with Reason Unknown and ExitCode -1 (the exit code is
//     the new parent's, init's, to read).
//
// Exits of the driver's own children are seen at once (SIGCHLD, then a
// non-reaping look at /proc so the group can be killed while the zombie
// leader still holds the group id, then wait4); re-adopted processes are
// polled every Config.PollInterval.
//
// Logs are rotated by copy-truncate: one goroutine checks the log size of
// every running attempt each Config.LogCheckInterval; above MaxLogBytes it
// copies the file to <attempt>.log.1 (replacing the previous one) and
// truncates it. Bytes the container writes in the short moment between the
// last copy and the truncate are lost; that is the price of keeping the
// child's fd valid across rotations and agent restarts.
//
// The file layout, the log files (rotation and following readers) and the
// bookkeeping of attempts (statuses, Events, the Stop sequence) are shared
// with the containerd driver, in packages under agent/runtime/internal.
//
// The package must not decide restarts, probes or back-off: that is the
// kubelet's job. Close stops the driver's goroutines and never the
// containers.
package process
