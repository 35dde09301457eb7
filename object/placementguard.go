package object

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PlacementGuardKind and PlacementGuardAPIVersion name the internal kind the
// scheduler writes.
const (
	PlacementGuardKind       = "PlacementGuard"
	PlacementGuardAPIVersion = "shoal.dev/v1"
)

// PlacementGuard serialises the binds that the state machine cannot re-check
// on its own. A bind's resource fit is re-checked in apply, but the rules
// that look at other pods across a topology domain (required pod affinity
// and anti-affinity, hard topology spread) are only checked by the claimer
// that placed the pod. Each such bind rewrites the one guard, carrying the
// revision its claimer saw, so the state machine refuses a bind computed
// from a view that another such bind has since changed. It is cluster-scoped
// and internal: users never write it.
type PlacementGuard struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PlacementGuardSpec `json:"spec"`
}

// PlacementGuardSpec is the body of a PlacementGuard.
type PlacementGuardSpec struct {
	// Revision counts the guarded binds.
	Revision int64 `json:"revision"`
}
