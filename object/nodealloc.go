package object

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NodeAllocationKind and NodeAllocationAPIVersion name the internal kind the
// scheduler writes.
const (
	NodeAllocationKind       = "NodeAllocation"
	NodeAllocationAPIVersion = "shoal.dev/v1"
)

// NodeAllocation is the scheduler's record of what is bound to one node. It is
// cluster-scoped and named after the node. Every bind to the node rewrites
// it, so a bind carries the revision it saw and the state machine refuses a
// bind computed from stale state. It is an internal kind: users never write
// it.
type NodeAllocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec NodeAllocationSpec `json:"spec"`
}

// NodeAllocationSpec is the body of a NodeAllocation.
type NodeAllocationSpec struct {
	// Revision counts the binds to the node.
	Revision int64 `json:"revision"`
	// Pods is the number of pods bound to the node.
	Pods int64 `json:"pods"`
}
