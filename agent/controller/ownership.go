package controller

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Selector turns a controller's spec.selector into a labels.Selector. It
// reports false for a nil, empty or invalid selector: an empty selector
// would match every object in the namespace, and a controller must then do
// nothing rather than adopt them all (the API refuses such objects; this is
// the second line).
func Selector(ls *metav1.LabelSelector) (labels.Selector, bool) {
	if ls == nil || (len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0) {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return nil, false
	}
	return sel, true
}

// Claimed sorts the objects a controller looks at by what it should do with
// them, as Kubernetes' ClaimObject does.
type Claimed[T metav1.Object] struct {
	// Owned are controlled by the owner (by uid) and match its selector.
	Owned []T
	// Adopt are orphans (no controller owner) that match the selector and
	// are not being deleted; the owner should set itself as their controller.
	Adopt []T
	// Release are controlled by the owner but no longer match its selector
	// (a user relabeled them); the owner should remove its reference.
	Release []T
}

// Claim sorts objs for owner. Objects in another namespace and objects
// controlled by someone else are left out: a controller never touches them.
// An owner being deleted neither adopts nor releases.
func Claim[T metav1.Object](owner metav1.Object, sel labels.Selector, objs []T) Claimed[T] {
	var c Claimed[T]
	ownerDeleting := owner.GetDeletionTimestamp() != nil
	for _, o := range objs {
		if o.GetNamespace() != owner.GetNamespace() {
			continue
		}
		matches := sel.Matches(labels.Set(o.GetLabels()))
		ref := metav1.GetControllerOfNoCopy(o)
		switch {
		case ref != nil && ref.UID == owner.GetUID():
			if matches {
				c.Owned = append(c.Owned, o)
			} else if !ownerDeleting {
				c.Release = append(c.Release, o)
			}
		case ref != nil:
			// Someone else's.
		case matches && !ownerDeleting && o.GetDeletionTimestamp() == nil:
			c.Adopt = append(c.Adopt, o)
		}
	}
	return c
}

// IsControlledBy reports whether obj's controller reference names uid.
func IsControlledBy(obj metav1.Object, uid types.UID) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == uid
}

// SetControllerRef makes owner the controller of obj (which must have none),
// keeping obj's other owner references.
func SetControllerRef(obj, owner metav1.Object, gvk schema.GroupVersionKind) {
	refs := slices.Clone(obj.GetOwnerReferences())
	obj.SetOwnerReferences(append(refs, *metav1.NewControllerRef(owner, gvk)))
}

// RemoveOwnerRef drops every owner reference to uid from obj.
func RemoveOwnerRef(obj metav1.Object, uid types.UID) {
	refs := slices.DeleteFunc(slices.Clone(obj.GetOwnerReferences()), func(r metav1.OwnerReference) bool {
		return r.UID == uid
	})
	if len(refs) == 0 {
		refs = nil
	}
	obj.SetOwnerReferences(refs)
}

// Replicas is a spec.replicas value with the Kubernetes default: nil means 1.
func Replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
