package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// describeWorkload prints the kind-specific part of describe for workload
// kinds; it reports whether it knew the kind.
func describeWorkload(w io.Writer, o *pb.Object, now time.Time) bool {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	defer tw.Flush()
	switch o.GetKind() {
	case "Pod":
		var p corev1.Pod
		if object.Decode(o, &p) != nil {
			return true
		}
		fmt.Fprintf(tw, "Node:\t%s\n", orNone(p.Spec.NodeName))
		fmt.Fprintf(tw, "Status:\t%s\n", podStatusText(&p))
		if p.Status.Reason != "" || p.Status.Message != "" {
			fmt.Fprintf(tw, "Reason:\t%s\nMessage:\t%s\n", p.Status.Reason, p.Status.Message)
		}
		fmt.Fprintf(tw, "IP:\t%s\n", orNone(p.Status.PodIP))
		if p.Status.StartTime != nil {
			fmt.Fprintf(tw, "Start Time:\t%s\n", p.Status.StartTime.UTC().Format(time.RFC1123Z))
		}
		policy := string(p.Spec.RestartPolicy)
		if policy == "" {
			policy = string(corev1.RestartPolicyAlways)
		}
		fmt.Fprintf(tw, "Restart Policy:\t%s\n", policy)
		fmt.Fprintln(tw, "Containers:")
		statuses := map[string]corev1.ContainerStatus{}
		for _, cs := range p.Status.ContainerStatuses {
			statuses[cs.Name] = cs
		}
		for _, c := range p.Spec.Containers {
			cs := statuses[c.Name]
			fmt.Fprintf(tw, "  %s:\n", c.Name)
			fmt.Fprintf(tw, "    Image:\t%s\n", c.Image)
			fmt.Fprintf(tw, "    Command:\t%s\n", strings.Join(append(append([]string{}, c.Command...), c.Args...), " "))
			for _, port := range c.Ports {
				fmt.Fprintf(tw, "    Port:\t%d/%s (host %d)\n", port.ContainerPort, orNone(string(port.Protocol)), port.HostPort)
			}
			fmt.Fprintf(tw, "    State:\t%s\n", containerState(cs.State))
			if cs.LastTerminationState.Terminated != nil {
				fmt.Fprintf(tw, "    Last State:\t%s\n", containerState(cs.LastTerminationState))
			}
			fmt.Fprintf(tw, "    Ready:\t%v\n", cs.Ready)
			fmt.Fprintf(tw, "    Restart Count:\t%d\n", cs.RestartCount)
			if r := c.Resources; len(r.Requests) > 0 || len(r.Limits) > 0 {
				fmt.Fprintf(tw, "    Requests:\t%s\n", resources(r.Requests))
				fmt.Fprintf(tw, "    Limits:\t%s\n", resources(r.Limits))
			}
			for name, pr := range map[string]*corev1.Probe{"Liveness": c.LivenessProbe, "Readiness": c.ReadinessProbe, "Startup": c.StartupProbe} {
				if pr != nil {
					fmt.Fprintf(tw, "    %s:\t%s\n", name, probeText(pr))
				}
			}
		}
		podConditions(tw, p.Status.Conditions)
		if len(p.Spec.NodeSelector) > 0 {
			fmt.Fprintf(tw, "Node-Selectors:\t%s\n", labelString(p.Spec.NodeSelector))
		}
		for _, t := range p.Spec.Tolerations {
			fmt.Fprintf(tw, "Toleration:\t%s %s %s:%s\n", t.Key, t.Operator, t.Value, t.Effect)
		}
	case "Deployment":
		var d appsv1.Deployment
		if object.Decode(o, &d) != nil {
			return true
		}
		fmt.Fprintf(tw, "Selector:\t%s\n", selectorText(d.Spec.Selector))
		fmt.Fprintf(tw, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
			replicasOf(d.Spec.Replicas), d.Status.UpdatedReplicas, d.Status.Replicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
		describeStrategy(tw, &d)
		fmt.Fprintln(tw, "Conditions:\n  Type\tStatus\tReason\tMessage")
		for _, c := range d.Status.Conditions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	case "ReplicaSet":
		var rs appsv1.ReplicaSet
		if object.Decode(o, &rs) != nil {
			return true
		}
		fmt.Fprintf(tw, "Selector:\t%s\n", selectorText(rs.Spec.Selector))
		fmt.Fprintf(tw, "Replicas:\t%d current / %d desired\n", rs.Status.Replicas, replicasOf(rs.Spec.Replicas))
		fmt.Fprintf(tw, "Pods Status:\t%d Ready / %d Available\n", rs.Status.ReadyReplicas, rs.Status.AvailableReplicas)
	case "Node":
		var n corev1.Node
		if object.Decode(o, &n) != nil {
			return true
		}
		fmt.Fprintf(tw, "Unschedulable:\t%v\n", n.Spec.Unschedulable)
		for _, t := range n.Spec.Taints {
			fmt.Fprintf(tw, "Taint:\t%s=%s:%s\n", t.Key, t.Value, t.Effect)
		}
		fmt.Fprintln(tw, "Conditions:\n  Type\tStatus\tLastTransitionTime\tReason\tMessage")
		for _, c := range n.Status.Conditions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.LastTransitionTime.UTC().Format(time.RFC1123Z), c.Reason, c.Message)
		}
		fmt.Fprintln(tw, "Addresses:")
		for _, a := range n.Status.Addresses {
			fmt.Fprintf(tw, "  %s:\t%s\n", a.Type, a.Address)
		}
		fmt.Fprintf(tw, "Allocatable:\t%s\n", resources(n.Status.Allocatable))
		fmt.Fprintf(tw, "Runtime:\t%s\n", n.Status.NodeInfo.ContainerRuntimeVersion)
	default:
		return false
	}
	return true
}

func podConditions(tw io.Writer, conds []corev1.PodCondition) {
	fmt.Fprintln(tw, "Conditions:\n  Type\tStatus\tReason\tMessage")
	for _, c := range conds {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

func containerState(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running (started " + s.Running.StartedAt.UTC().Format(time.RFC3339) + ")"
	case s.Waiting != nil:
		out := "Waiting: " + s.Waiting.Reason
		if s.Waiting.Message != "" {
			out += " (" + s.Waiting.Message + ")"
		}
		return out
	case s.Terminated != nil:
		t := s.Terminated
		out := fmt.Sprintf("Terminated: %s, exit code %d", t.Reason, t.ExitCode)
		if t.Message != "" {
			out += " (" + t.Message + ")"
		}
		return out
	}
	return "<none>"
}

func resources(r corev1.ResourceList) string {
	if len(r) == 0 {
		return "<none>"
	}
	var parts []string
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods} {
		if q, ok := r[name]; ok {
			parts = append(parts, string(name)+"="+q.String())
		}
	}
	return strings.Join(parts, ", ")
}

func probeText(p *corev1.Probe) string {
	var h string
	switch {
	case p.HTTPGet != nil:
		h = fmt.Sprintf("http-get %s:%s", p.HTTPGet.Path, p.HTTPGet.Port.String())
	case p.TCPSocket != nil:
		h = "tcp-socket :" + p.TCPSocket.Port.String()
	case p.Exec != nil:
		h = "exec " + strings.Join(p.Exec.Command, " ")
	}
	period, failure := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10
	}
	if failure == 0 {
		failure = 3
	}
	return fmt.Sprintf("%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", h,
		p.InitialDelaySeconds, max(p.TimeoutSeconds, 1), period, max(p.SuccessThreshold, 1), failure)
}

func selectorText(s *metav1.LabelSelector) string { return metav1.FormatLabelSelector(s) }
