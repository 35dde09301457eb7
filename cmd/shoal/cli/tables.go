package cli

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func init() {
	tables["Pod"] = columns{
		headers: []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"},
		row: func(o *pb.Object, now time.Time) []string {
			var p corev1.Pod
			_ = object.Decode(o, &p)
			ready, restarts := 0, int32(0)
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready {
					ready++
				}
				restarts += cs.RestartCount
			}
			return []string{o.GetName(), fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), podStatusText(&p),
				fmt.Sprint(restarts), object.Age(o.GetCreateTimeUnixNano(), now)}
		},
		wide: []string{"IP", "NODE"},
		wideRow: func(o *pb.Object) []string {
			var p corev1.Pod
			_ = object.Decode(o, &p)
			return []string{orNone(p.Status.PodIP), orNone(p.Spec.NodeName)}
		},
	}
	tables["Deployment"] = columns{
		headers: []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"},
		row: func(o *pb.Object, now time.Time) []string {
			var d appsv1.Deployment
			_ = object.Decode(o, &d)
			return []string{o.GetName(), fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicasOf(d.Spec.Replicas)),
				fmt.Sprint(d.Status.UpdatedReplicas), fmt.Sprint(d.Status.AvailableReplicas), object.Age(o.GetCreateTimeUnixNano(), now)}
		},
	}
	tables["ReplicaSet"] = columns{
		headers: []string{"NAME", "DESIRED", "CURRENT", "READY", "AGE"},
		row: func(o *pb.Object, now time.Time) []string {
			var rs appsv1.ReplicaSet
			_ = object.Decode(o, &rs)
			return []string{o.GetName(), fmt.Sprint(replicasOf(rs.Spec.Replicas)), fmt.Sprint(rs.Status.Replicas),
				fmt.Sprint(rs.Status.ReadyReplicas), object.Age(o.GetCreateTimeUnixNano(), now)}
		},
	}
	tables["Node"] = columns{
		headers: []string{"NAME", "STATUS", "ROLES", "AGE", "VERSION"},
		row: func(o *pb.Object, now time.Time) []string {
			var n corev1.Node
			_ = object.Decode(o, &n)
			return []string{o.GetName(), nodeStatusText(&n), "<none>", object.Age(o.GetCreateTimeUnixNano(), now), n.Status.NodeInfo.KubeletVersion}
		},
		wide: []string{"INTERNAL-IP", "CPU", "MEMORY", "RUNTIME"},
		wideRow: func(o *pb.Object) []string {
			var n corev1.Node
			_ = object.Decode(o, &n)
			ip := "<none>"
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					ip = a.Address
				}
			}
			cpu, mem := n.Status.Allocatable[corev1.ResourceCPU], n.Status.Allocatable[corev1.ResourceMemory]
			return []string{ip, cpu.String(), mem.String(), n.Status.NodeInfo.ContainerRuntimeVersion}
		},
	}
}

func init() {
	tables["Event"] = columns{
		headers: []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"},
		row: func(o *pb.Object, now time.Time) []string {
			var ev corev1.Event
			_ = object.Decode(o, &ev)
			obj := strings.ToLower(ev.InvolvedObject.Kind) + "/" + ev.InvolvedObject.Name
			return []string{object.Age(ev.LastTimestamp.UnixNano(), now), ev.Type, ev.Reason, obj, ev.Message}
		},
	}
}

func replicasOf(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// podStatusText is kubectl's STATUS column: the reason of the first
// container that is waiting or terminated, else the phase.
func podStatusText(p *corev1.Pod) string {
	if p.Status.Reason != "" {
		return p.Status.Reason
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
			return w.Reason
		}
		if t := cs.State.Terminated; t != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && t.Reason != "" {
			return t.Reason
		}
	}
	if p.Status.Phase == corev1.PodPending && p.Spec.NodeName != "" {
		return "ContainerCreating"
	}
	if p.Status.Phase == "" {
		return string(corev1.PodPending)
	}
	if p.Status.Phase == corev1.PodSucceeded {
		return "Completed"
	}
	if p.Status.Phase == corev1.PodFailed {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.Reason != "" {
				return t.Reason
			}
		}
		return "Error"
	}
	return string(p.Status.Phase)
}

func nodeStatusText(n *corev1.Node) string {
	st := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				st = "Ready"
			} else {
				st = "NotReady"
			}
		}
	}
	parts := []string{st}
	if n.Spec.Unschedulable {
		parts = append(parts, "SchedulingDisabled")
	}
	return strings.Join(parts, ",")
}
