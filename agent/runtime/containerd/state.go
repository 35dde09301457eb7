package containerd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/layout"
)

// Labels on every containerd container of the driver. They are the
// attempt's record: identity from creation, the exit once observed, so a
// new driver rebuilds its state from containerd alone.
const (
	labelPodUID       = "shoal.pod.uid"
	labelPodNamespace = "shoal.pod.namespace"
	labelPodName      = "shoal.pod.name"
	labelContainer    = "shoal.container"
	labelAttempt      = "shoal.attempt"
	labelImage        = "shoal.image"
	labelStartedAt    = "shoal.started-at"
	labelFinishedAt   = "shoal.finished-at"
	labelExitCode     = "shoal.exit-code"
	labelReason       = "shoal.reason"
	labelMessage      = "shoal.message"
)

// identifierRE is containerd's rule for namespaces and container ids.
var identifierRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)

func validIdentifier(s string) bool { return len(s) <= 76 && identifierRE.MatchString(s) }

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// containerdID names an attempt in containerd (container and snapshot):
// the container's name made an identifier, the attempt, and a hash of the
// whole id that keeps it unique, e.g. "web-0-1f2e3d4c5b6a7988".
func containerdID(id runtime.ContainerID) string {
	var b strings.Builder
	for _, r := range id.Name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "c"
	}
	return name + "-" + strconv.Itoa(id.Attempt) + "-" + shortHash(id.String(), 16)
}

// cniContainerID names a pod's network in CNI (its cache and IPAM).
func cniContainerID(podUID string) string { return "shoal-" + shortHash(podUID, 24) }

// attemptLabels are the labels a container is created with.
func attemptLabels(pod runtime.Pod, c runtime.ContainerSpec, id runtime.ContainerID) map[string]string {
	return map[string]string{
		labelPodUID:       pod.UID,
		labelPodNamespace: pod.Namespace,
		labelPodName:      pod.Name,
		labelContainer:    id.Name,
		labelAttempt:      strconv.Itoa(id.Attempt),
		labelImage:        c.Image,
	}
}

func exitLabels(st runtime.Status) map[string]string {
	return map[string]string{
		labelFinishedAt: st.FinishedAt.UTC().Format(time.RFC3339Nano),
		labelExitCode:   strconv.Itoa(st.ExitCode),
		labelReason:     st.Reason,
		labelMessage:    st.Message,
	}
}

// statusFromLabels rebuilds an attempt's status from its container's
// labels; ok is false for containers that are not the driver's. exited
// tells whether the exit was recorded.
func statusFromLabels(labels map[string]string, created time.Time) (st runtime.Status, exited, ok bool) {
	attempt, err := strconv.Atoi(labels[labelAttempt])
	if err != nil {
		return st, false, false
	}
	st.ID = runtime.ContainerID{PodUID: labels[labelPodUID], Name: labels[labelContainer], Attempt: attempt}
	if layout.CheckID(st.ID) != nil {
		return st, false, false
	}
	st.Pod = runtime.Pod{UID: st.ID.PodUID, Namespace: labels[labelPodNamespace], Name: labels[labelPodName]}
	st.StartedAt = created
	if t, err := time.Parse(time.RFC3339Nano, labels[labelStartedAt]); err == nil {
		st.StartedAt = t
	}
	st.Running = true
	code, err := strconv.Atoi(labels[labelExitCode])
	if err != nil {
		return st, false, true
	}
	st.Running = false
	st.ExitCode = code
	st.Reason = labels[labelReason]
	st.Message = labels[labelMessage]
	st.FinishedAt, _ = time.Parse(time.RFC3339Nano, labels[labelFinishedAt])
	return st, true, true
}

// exitStatus turns a task's exit into a status: 128+n is signal n (as the
// runc shim reports it), SIGKILL with an OOM kill in the cgroup is
// OOMKilled.
func exitStatus(st *runtime.Status, code uint32, at time.Time, oom bool) {
	st.Running = false
	st.ExitCode = int(code)
	st.FinishedAt = at
	st.Reason, st.Message = runtime.ReasonError, ""
	switch {
	case code == 0:
		st.Reason = runtime.ReasonCompleted
	case oom:
		st.Reason, st.Message = runtime.ReasonOOMKilled, "killed for exceeding the memory limit"
	case code > 128 && code < 128+65:
		st.Message = fmt.Sprintf("killed by signal %d", code-128)
	}
}

// unknownExit is an exit that happened where no one could see its code.
func unknownExit(st *runtime.Status, at time.Time, msg string) {
	st.Running = false
	st.ExitCode = -1
	st.FinishedAt = at
	st.Reason, st.Message = runtime.ReasonUnknown, msg
}

// Files under Dir besides layout's (the pod's directory and resolv.conf,
// the attempts' logs). Pod-level files have a dot in their names:
// container names (DNS labels) never do, so they cannot collide with a
// container's directory.
func (d *Driver) podRecordPath(uid string) string { return filepath.Join(d.files.Pod(uid), "pod.json") }
func (d *Driver) netnsPath(uid string) string     { return filepath.Join(d.files.Pod(uid), "net.ns") }
func (d *Driver) hostsPath(uid string) string     { return filepath.Join(d.files.Pod(uid), "etc.hosts") }

// podRecord is a pod's network as kept in pod.json.
type podRecord struct {
	Pod   runtime.Pod `json:"pod"`
	IP    netip.Addr  `json:"ip"`
	NetNS string      `json:"netns"`
	// CNIID is the container id the network was added with in CNI.
	CNIID string `json:"cniID"`
}

func readPodRecord(path string) (*podRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r podRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}
