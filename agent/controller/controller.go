package controller

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Action says how the runner applies a Write.
type Action int

// The zero Action is invalid, so a forgotten field is caught rather than
// taken for a Create.
const (
	// Create stores a new object; it fails if the name is taken.
	Create Action = iota + 1
	// Update replaces spec and metadata (labels, annotations, owner
	// references); the stored status is kept.
	Update
	// UpdateStatus replaces the status only.
	UpdateStatus
	// Delete removes the object.
	Delete
)

// String is the action's name, as logs show it.
func (a Action) String() string {
	switch a {
	case Create:
		return "Create"
	case Update:
		return "Update"
	case UpdateStatus:
		return "UpdateStatus"
	case Delete:
		return "Delete"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Kinds of the objects controllers write, as Write.Kind spells them.
const (
	KindPod        = "Pod"
	KindReplicaSet = "ReplicaSet"
	KindDeployment = "Deployment"
	KindNode       = "Node"
	KindService    = "Service"
)

// Write is one change a reconcile asks for.
type Write struct {
	Action Action
	Kind   string // KindPod, KindReplicaSet, KindDeployment, KindNode, KindService
	// Object is typed: *corev1.Pod, *appsv1.ReplicaSet, *appsv1.Deployment,
	// *corev1.Node or *corev1.Service. For Update, UpdateStatus and Delete it carries the
	// resourceVersion it was computed from.
	Object metav1.Object
	// Reason is a short CamelCase reason ("SuccessfulCreate"), logged and
	// later turned into an Event.
	Reason string
	// Message, when set, is the Event's message as the controller words it
	// ("Scaled up replica set web-7f9c to 3"). The runner records the Event
	// (for a ReplicaSet, on its owning Deployment); a ReplicaSet write
	// without one is not an Event.
	Message string
}

// String is a one-line summary for logs and tests:
// "Create Pod default/web-7xk2p (SuccessfulCreate)".
func (w Write) String() string {
	ns := w.Object.GetNamespace()
	if ns != "" {
		ns += "/"
	}
	return fmt.Sprintf("%s %s %s%s (%s)", w.Action, w.Kind, ns, w.Object.GetName(), w.Reason)
}

// Env is what a reconcile may know of the world beyond its inputs.
type Env struct {
	// Now is the time the decision is made at.
	Now time.Time
	// NewName returns prefix plus 5 random characters of [a-z0-9]. Tests pass
	// a deterministic one. Required by controllers that create pods.
	NewName func(prefix string) string
}

// Time is Now as a metav1.Time cut to whole seconds, which is what a stored
// object keeps (RFC 3339 in JSON). Writing that precision from the start
// keeps an in-memory decision equal to the one made after a round trip.
func (e Env) Time() metav1.Time {
	return metav1.NewTime(e.Now).Rfc3339Copy()
}
