// Package nodelifecycle turns gossip's verdict on a node into the node's
// Ready condition and unreachable taint, and fails the pods of a node dead
// for longer than the eviction timeout so that their controllers replace
// them elsewhere.
//
// It is a pure function (see package controller for the contract). Gossip
// (memberlist) is the failure detector: this package never decides whether a
// node is alive, it is told.
package nodelifecycle

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/agent/controller"
)

// The Ready condition gossip's verdict maps to, and the taint of a dead node.
const (
	ReasonAlive  = "ShoalAgentReady"
	MessageAlive = "gossip declares the agent alive"
	ReasonDead   = "NodeStatusUnknown"
	MessageDead  = "gossip declares the agent dead"

	// ReasonNodeLost is the reason of a pod failed because its node died.
	ReasonNodeLost = "NodeLost"
	// ReasonNodeNotReady marks a pod not Ready because its node is dead.
	ReasonNodeNotReady = "NodeNotReady"

	ReasonTaint   = "TaintNodeUnreachable"
	ReasonUntaint = "RemoveTaintNodeUnreachable"
	ReasonStatus  = "NodeStatusUpdated"
)

// UnreachableTaint is the taint a dead node carries, as in Kubernetes. Pods
// that tolerate it are not failed (see Reconcile).
var UnreachableTaint = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}

// Reconcile returns the writes that make node and its pods reflect gossip:
// alive is memberlist's verdict and deadSince when it declared the node dead
// (zero when unknown: then no pod is failed). pods are the pods bound to node
// (others are ignored).
//
// The node's Ready condition is True (ShoalAgentReady) while alive and False
// (NodeStatusUnknown) while dead; lastTransitionTime is env.Now when the
// status flips. lastHeartbeatTime is not maintained: agents write no
// heartbeats (gossip is the detector), and a timestamp refreshed on every
// reconcile would be a Raft write per node per pass for nothing.
//
// The unreachable NoExecute taint follows the node's stored Ready condition,
// as in Kubernetes: it is added once the condition says False, and removed
// once it says True. A node's status and spec are separate writes, and a
// reconcile writes an object once, so a flip takes two passes: the condition
// first (what the scheduler, proxy and DNS read), the taint next.
//
// While dead, every Ready pod on it has its Ready and ContainersReady
// conditions set False at once (as Kubernetes' MarkPodsNotReady), so
// endpoints drop it before eviction. When dead for at least evictionTimeout, every pod on the node not yet
// finished is failed (phase Failed, reason NodeLost, Ready condition False,
// container statuses kept). As in Kubernetes' taint-based eviction, a pod
// that tolerates the unreachable taint is exempt when its toleration has no
// tolerationSeconds (DaemonSet-style pods), and waits tolerationSeconds
// instead of evictionTimeout when it has one. When alive, pods are left
// alone: the node's agent stops the pods failed while it was away.
func Reconcile(env controller.Env, node *corev1.Node, alive bool, deadSince time.Time, evictionTimeout time.Duration, pods []*corev1.Pod) []controller.Write {
	var writes []controller.Write
	now := env.Time()

	ready, ok := desiredReady(node, alive, now)
	switch {
	case ok:
		c := node.DeepCopy()
		setNodeCondition(c, ready)
		writes = append(writes, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindNode, Object: c, Reason: ReasonStatus})
	default:
		// The stored condition agrees with gossip: the taint may follow it.
		if w, ok := taintWrite(node, alive, now); ok {
			writes = append(writes, w)
		}
	}

	// A zero deadSince means the runner does not know when the node died;
	// failing pods then could fail them at once, so nothing is evicted (its
	// pods are still marked not Ready: that needs no time).
	if !alive {
		known := !deadSince.IsZero()
		dead := env.Now.Sub(deadSince)
		for _, p := range pods {
			if p.Spec.NodeName != node.Name || controller.IsPodTerminal(p) {
				continue
			}
			timeout, evict := podTimeout(p, evictionTimeout)
			if !known || !evict || dead < timeout {
				// Not evicted yet, but no longer Ready: nothing should send
				// it traffic while its node is unreachable.
				if controller.IsPodReady(p) {
					writes = append(writes, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindPod, Object: notReadyPod(p, now), Reason: ReasonNodeNotReady})
				}
				continue
			}
			writes = append(writes, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindPod, Object: failPod(p, node.Name, now), Reason: ReasonNodeLost})
		}
	}
	return writes
}

// desiredReady returns the Ready condition node should have, and whether it
// differs from the stored one.
func desiredReady(node *corev1.Node, alive bool, now metav1.Time) (corev1.NodeCondition, bool) {
	want := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: ReasonAlive, Message: MessageAlive}
	if !alive {
		want.Status, want.Reason, want.Message = corev1.ConditionFalse, ReasonDead, MessageDead
	}
	old := nodeCondition(node, corev1.NodeReady)
	if old == nil {
		want.LastTransitionTime = now
		return want, true
	}
	if old.Status == want.Status && old.Reason == want.Reason && old.Message == want.Message {
		return corev1.NodeCondition{}, false
	}
	// Kept as stored: this controller writes no heartbeats.
	want.LastHeartbeatTime = old.LastHeartbeatTime
	want.LastTransitionTime = old.LastTransitionTime
	if old.Status != want.Status {
		want.LastTransitionTime = now
	}
	return want, true
}

func nodeCondition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func setNodeCondition(node *corev1.Node, c corev1.NodeCondition) {
	if old := nodeCondition(node, c.Type); old != nil {
		*old = c
		return
	}
	node.Status.Conditions = append(node.Status.Conditions, c)
}

// taintWrite adds the unreachable taint to a dead node or removes it from a
// live one, when needed.
func taintWrite(node *corev1.Node, alive bool, now metav1.Time) (controller.Write, bool) {
	has := false
	for _, t := range node.Spec.Taints {
		if t.MatchTaint(&UnreachableTaint) {
			has = true
		}
	}
	if has != alive {
		return controller.Write{}, false
	}
	c := node.DeepCopy()
	if alive {
		var kept []corev1.Taint
		for _, t := range c.Spec.Taints {
			if !t.MatchTaint(&UnreachableTaint) {
				kept = append(kept, t)
			}
		}
		c.Spec.Taints = kept
		return controller.Write{Action: controller.Update, Kind: controller.KindNode, Object: c, Reason: ReasonUntaint}, true
	}
	t := UnreachableTaint
	t.TimeAdded = &now
	c.Spec.Taints = append(c.Spec.Taints, t)
	return controller.Write{Action: controller.Update, Kind: controller.KindNode, Object: c, Reason: ReasonTaint}, true
}

// podTimeout is how long p may stay on a dead node, and false when it may
// stay for ever (it tolerates the unreachable taint with no time limit).
// With several matching tolerations the shortest limit wins, as in
// Kubernetes.
func podTimeout(p *corev1.Pod, evictionTimeout time.Duration) (time.Duration, bool) {
	tolerated, limited := false, false
	var shortest time.Duration
	for _, t := range p.Spec.Tolerations {
		if !tolerates(t, UnreachableTaint) {
			continue
		}
		tolerated = true
		if t.TolerationSeconds == nil {
			continue
		}
		d := time.Duration(max(*t.TolerationSeconds, 0)) * time.Second
		if !limited || d < shortest {
			shortest, limited = d, true
		}
	}
	switch {
	case !tolerated:
		return evictionTimeout, true
	case limited:
		return shortest, true
	}
	return 0, false
}

// tolerates is corev1.Toleration.ToleratesTaint without the numeric Lt/Gt
// operators, which need a logger and never match the unreachable taint
// (it has no value).
func tolerates(t corev1.Toleration, taint corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "", corev1.TolerationOpEqual:
		return t.Value == taint.Value
	case corev1.TolerationOpExists:
		return true
	}
	return false
}

// failPod is p failed because its node was lost; container statuses stay as
// last reported.
func failPod(p *corev1.Pod, nodeName string, now metav1.Time) *corev1.Pod {
	c := p.DeepCopy()
	c.Status.Phase = corev1.PodFailed
	c.Status.Reason = ReasonNodeLost
	c.Status.Message = fmt.Sprintf("node %s is unreachable", nodeName)
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: ReasonNodeLost, LastTransitionTime: now}
	for i := range c.Status.Conditions {
		old := &c.Status.Conditions[i]
		if old.Type != corev1.PodReady {
			continue
		}
		if old.Status == corev1.ConditionFalse {
			ready.LastTransitionTime = old.LastTransitionTime
		}
		ready.LastProbeTime = old.LastProbeTime
		*old = ready
		return c
	}
	c.Status.Conditions = append(c.Status.Conditions, ready)
	return c
}

// notReadyPod returns p with its Ready and ContainersReady conditions False.
func notReadyPod(p *corev1.Pod, now metav1.Time) *corev1.Pod {
	c := p.DeepCopy()
	for i := range c.Status.Conditions {
		cond := &c.Status.Conditions[i]
		if (cond.Type == corev1.PodReady || cond.Type == corev1.ContainersReady) && cond.Status != corev1.ConditionFalse {
			cond.Status = corev1.ConditionFalse
			cond.Reason = ReasonNodeNotReady
			cond.Message = "node " + p.Spec.NodeName + " is unreachable"
			cond.LastTransitionTime = now
		}
	}
	return c
}
