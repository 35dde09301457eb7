package agent

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/events"
)

// recordWrites turns committed controller writes into events, as the
// Kubernetes controllers report them: pod creations on their ReplicaSet,
// replica set scaling on their Deployment, node and pod status changes on
// the object itself. Status refreshes of ReplicaSets and Deployments are
// not events.
func (a *Agent) recordWrites(writes []controller.Write) {
	for _, w := range writes {
		ref, typ, msg, ok := eventFor(w)
		if ok {
			a.events.Event(ref, typ, w.Reason, msg)
		}
	}
}

func refOf(kind string, o metav1.Object) events.Ref {
	return events.Ref{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName(), UID: string(o.GetUID())}
}

// ownerRef is the controlling owner of o, if any.
func ownerRef(o metav1.Object) (events.Ref, bool) {
	for _, r := range o.GetOwnerReferences() {
		if r.Controller != nil && *r.Controller {
			return events.Ref{Kind: r.Kind, Namespace: o.GetNamespace(), Name: r.Name, UID: string(r.UID)}, true
		}
	}
	return events.Ref{}, false
}

func eventFor(w controller.Write) (events.Ref, string, string, bool) {
	normal := corev1.EventTypeNormal
	switch obj := w.Object.(type) {
	case *corev1.Pod:
		switch w.Action {
		case controller.Create:
			if owner, ok := ownerRef(obj); ok {
				return owner, normal, "Created pod: " + obj.Name, true
			}
		case controller.Delete:
			if owner, ok := ownerRef(obj); ok {
				return owner, normal, "Deleted pod: " + obj.Name, true
			}
		case controller.UpdateStatus:
			msg := obj.Status.Message
			if msg == "" {
				msg = "node " + obj.Spec.NodeName + " is unreachable"
			}
			return refOf("Pod", obj), corev1.EventTypeWarning, msg, true
		}
	case *appsv1.ReplicaSet:
		// The deployment controller words its scaling events itself
		// (Message); its other updates of a set are not events.
		if w.Message != "" && (w.Action == controller.Create || w.Action == controller.Update) {
			if owner, ok := ownerRef(obj); ok {
				return owner, normal, w.Message, true
			}
		}
		if w.Action == controller.Delete {
			if owner, ok := ownerRef(obj); ok {
				return owner, normal, "Deleted old replica set " + obj.Name, true
			}
		}
	case *corev1.Node:
		for _, c := range obj.Status.Conditions {
			if c.Type == corev1.NodeReady && w.Action == controller.UpdateStatus {
				typ := normal
				state := "NodeReady"
				if c.Status != corev1.ConditionTrue {
					typ, state = corev1.EventTypeWarning, "NodeNotReady"
				}
				return refOf("Node", obj), typ, fmt.Sprintf("Node %s status is now: %s (%s)", obj.Name, state, c.Message), true
			}
		}
		if w.Action == controller.Update {
			return refOf("Node", obj), normal, "Node " + obj.Name + " taints changed", true
		}
	}
	return events.Ref{}, "", "", false
}
