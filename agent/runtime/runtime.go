// Package runtime is the seam between the kubelet duties of an agent and
// whatever runs containers on the node: the interface Driver and the values
// it takes and returns.
//
// A driver only starts, stops and inspects container attempts. It must not
// decide anything: restarts, probes, back-off and status reporting belong to
// the kubelet, which calls the driver. Implementations live in sub-packages:
// process (host processes, the embedded default), sim (runs nothing, for
// scale simulation) and containerd (images, cgroup limits, a network
// namespace per pod).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors that callers act on. Drivers wrap them with %w.
var (
	// ErrNotFound: the driver does not know this container attempt.
	ErrNotFound = errors.New("container not found")
	// ErrExists: Start was called for an attempt that the driver already knows.
	ErrExists = errors.New("container attempt already exists")
	// ErrRunning: the attempt must be stopped first (Remove).
	ErrRunning = errors.New("container is running")
	// ErrNotRunning: the attempt has exited (Exec).
	ErrNotRunning = errors.New("container is not running")
	// ErrClosed: the driver was closed.
	ErrClosed = errors.New("runtime driver closed")
	// ErrImagePull: Start found the image neither on the node nor in its
	// registry, or imagePullPolicy Never forbade the pull (Kubernetes'
	// waiting reason ErrImagePull).
	ErrImagePull = errors.New("cannot pull image")
)

// Image pull policies, as Kubernetes spells them.
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// Reasons for an exited attempt, as Kubernetes spells them in
// containerStatuses[].state.terminated.reason.
const (
	ReasonCompleted = "Completed" // exit code 0
	ReasonError     = "Error"     // non-zero exit code or killed by a signal
	ReasonOOMKilled = "OOMKilled" // killed for exceeding its memory limit
	// ReasonUnknown: the exit happened where the driver could not observe it
	// (for example while the agent was down); ExitCode is then -1.
	ReasonUnknown = "Unknown"
)

// Port is one containerPort of a container.
type Port struct {
	Name          string
	ContainerPort int32
	HostPort      int32
	Protocol      string // "TCP" (default), "UDP"
}

// ContainerSpec is one container of a pod, resolved by the kubelet: env
// values are final, image names are as written in the manifest.
type ContainerSpec struct {
	Name  string
	Image string
	// ImagePullPolicy is one of the Pull constants; empty means
	// IfNotPresent. Drivers without images ignore it.
	ImagePullPolicy string
	// Command and Args make the argv (Command+Args). Drivers with images fall
	// back to the image's entrypoint; the process runtime requires Command.
	Command []string
	Args    []string
	// Env is the complete environment as "K=V".
	Env []string
	// WorkingDir is the working directory; a relative path resolves inside
	// the pod's own directory (drivers decide where that is).
	WorkingDir string
	Ports      []Port
	// CPUMillis and MemoryBytes are limits; 0 means none. Drivers that
	// cannot enforce them say so in their documentation.
	CPUMillis   int64
	MemoryBytes int64
	// ResolvConf is the file the container sees as /etc/resolv.conf (the
	// kubelet renders it from the pod's dnsPolicy); nil leaves the driver's
	// default. Drivers that cannot mount files say in their documentation
	// how the container finds it.
	ResolvConf []byte
}

// Pod identifies the pod a container belongs to.
type Pod struct {
	UID       string
	Namespace string
	Name      string
}

// ContainerID names one attempt of one container: every restart of a
// container is a new attempt with a higher number.
type ContainerID struct {
	PodUID  string
	Name    string
	Attempt int
}

// String returns "uid/name/attempt"; ParseContainerID reverses it.
func (id ContainerID) String() string {
	return id.PodUID + "/" + id.Name + "/" + strconv.Itoa(id.Attempt)
}

// ParseContainerID parses the form written by ContainerID.String.
func ParseContainerID(s string) (ContainerID, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return ContainerID{}, fmt.Errorf("container id %q: want uid/name/attempt", s)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 0 {
		return ContainerID{}, fmt.Errorf("container id %q: attempt %q is not a non-negative number", s, parts[2])
	}
	return ContainerID{PodUID: parts[0], Name: parts[1], Attempt: n}, nil
}

// Status is what a driver knows about one container attempt.
type Status struct {
	ID  ContainerID
	Pod Pod
	// Running is true from a successful Start until the exit is observed.
	Running bool
	// PID is the main process (0 when the driver has none).
	PID        int
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	// ExitCode is the exit status, 128+signal when killed by a signal, -1
	// when not observable (Reason Unknown). Meaningless while running.
	ExitCode int
	// Reason is one of the Reason constants once exited, empty while running.
	Reason string
	// Message is a human-readable detail of the exit (for example which
	// signal killed it), possibly empty.
	Message string
}

// Driver starts, stops and inspects container attempts on this node. All
// methods are safe for concurrent use.
type Driver interface {
	// Name is the driver's name as given to --runtime ("process", "sim",
	// "containerd").
	Name() string
	// Start creates and starts one container attempt and returns once its
	// process is started. It fails with ErrExists if the attempt is known.
	// A start that fails (no such binary, bad working dir) leaves no attempt
	// behind, so the kubelet may retry the same attempt number.
	Start(ctx context.Context, pod Pod, c ContainerSpec, attempt int) (Status, error)
	// Stop sends SIGTERM (to every process of the container), waits up to
	// grace for the exit, then sends SIGKILL. It is idempotent and returns
	// the final status; ctx ending cuts the grace short.
	Stop(ctx context.Context, id ContainerID, grace time.Duration) (Status, error)
	// Status returns the attempt's status, or ErrNotFound.
	Status(id ContainerID) (Status, error)
	// List returns every attempt the driver knows, running or exited,
	// including those found at startup (re-adoption after an agent restart).
	// Each attempt appears once.
	List() ([]Status, error)
	// Remove forgets an exited attempt and deletes its files, logs included
	// (ErrRunning if it still runs). Logs of an attempt are kept until then.
	Remove(id ContainerID) error
	// RemovePod stops every attempt of the pod (each with grace), forgets
	// them and deletes everything the driver kept for the pod.
	RemovePod(ctx context.Context, podUID string, grace time.Duration) error
	// Logs opens the attempt's combined stdout and stderr, bytes as written.
	// With follow the reader keeps streaming until ctx ends, the reader is
	// closed, or the attempt has exited and the log is drained (io.EOF).
	Logs(ctx context.Context, id ContainerID, follow bool) (io.ReadCloser, error)
	// Exec runs cmd in the running container's environment and returns its
	// exit code. ctx ending kills it.
	Exec(ctx context.Context, id ContainerID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	// Events delivers the status of each attempt whose exit the driver
	// observes, once per exit, so the kubelet need not poll. Exits found at
	// startup are in List, not on Events. The channel is closed by Close.
	Events() <-chan Status
	// Close stops the driver's own goroutines. It never stops containers:
	// a new driver on the same state re-adopts them.
	Close() error
}

// PodNetwork is implemented by drivers that give every pod a network
// namespace and an address of its own (containerd). The kubelet calls it
// before resolving a pod's env (status.podIP) and reports the address as
// the pod's IP; with drivers that do not implement it (process, sim) the
// pod's IP is the node's.
type PodNetwork interface {
	// SetupPodNetwork creates the pod's network unless it exists and
	// returns the pod's IP. It is idempotent; Start sets the network up
	// too, and RemovePod releases it.
	SetupPodNetwork(ctx context.Context, pod Pod) (netip.Addr, error)
}

// Usage is what one running container attempt uses, as read at At.
type Usage struct {
	// CPUNanos is the CPU time (user and system) the attempt's processes
	// have used since it started. It only grows while the attempt runs,
	// except where a driver says otherwise; a new attempt starts from 0.
	CPUNanos uint64
	// MemoryWorkingSetBytes is the memory the attempt holds that the kernel
	// cannot simply drop: usage minus inactive page cache, as cadvisor and
	// the kubelet count it (the figure the OOM killer looks at).
	MemoryWorkingSetBytes uint64
	// MemoryLimitBytes is the attempt's memory limit; 0 means none.
	MemoryLimitBytes uint64
	// At is when the figures were read.
	At time.Time
}

// Stats is implemented by drivers that can measure what their containers
// use (containerd from the task's cgroup, process from /proc). The kubelet
// samples it for `shoal top` and /metrics; with a driver that does not
// implement it (sim) no usage is reported.
type Stats interface {
	// Stats reads the running attempt's usage now. It fails with
	// ErrNotFound for an unknown attempt and ErrNotRunning for one that
	// has exited.
	Stats(ctx context.Context, id ContainerID) (Usage, error)
}
