package manifest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/proto/shoalpb"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// maxAnnotationBytes is Kubernetes' limit on the total size of an object's
// annotation keys and values.
const maxAnnotationBytes = 256 * 1024

// fromMeta validates the metadata of a decoded object and starts the Object
// it becomes.
func fromMeta(k object.Kind, dec decoder, m metav1.Object) (*shoalpb.Object, *fieldErr) {
	o := &shoalpb.Object{
		Name:        m.GetName(),
		Namespace:   m.GetNamespace(),
		Labels:      m.GetLabels(),
		Annotations: m.GetAnnotations(),
	}
	if o.Name == "" {
		return nil, errAt("metadata.name", "required")
	}
	if errs := dec.name(o.Name); len(errs) > 0 {
		return nil, invalid("metadata.name", o.Name, errs)
	}
	switch {
	case !k.Namespaced && o.Namespace != "":
		return nil, errAt("metadata.namespace", fmt.Sprintf("%q: a %s is cluster-scoped and has no namespace", o.Namespace, k.Name))
	case k.Namespaced && o.Namespace == "":
		o.Namespace = "default"
		m.SetNamespace(o.Namespace) // the kind's validation sees it too
	case k.Namespaced:
		if errs := content.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return nil, invalid("metadata.namespace", o.Namespace, errs)
		}
	}
	for _, key := range sortedKeys(o.Labels) {
		if errs := content.IsLabelKey(key); len(errs) > 0 {
			return nil, errAt("metadata.labels."+key, "invalid key: "+strings.Join(errs, "; "))
		}
		if errs := content.IsLabelValue(o.Labels[key]); len(errs) > 0 {
			return nil, invalid("metadata.labels."+key, o.Labels[key], errs)
		}
	}
	size := 0
	for _, key := range sortedKeys(o.Annotations) {
		// Annotation keys are label keys in any case, as in Kubernetes.
		if errs := content.IsLabelKey(strings.ToLower(key)); len(errs) > 0 {
			return nil, errAt("metadata.annotations."+key, "invalid key: "+strings.Join(errs, "; "))
		}
		size += len(key) + len(o.Annotations[key])
	}
	if size > maxAnnotationBytes {
		return nil, errAt("metadata.annotations", fmt.Sprintf("too long: %d bytes, at most %d are allowed", size, maxAnnotationBytes))
	}
	if rv := m.GetResourceVersion(); rv != "" {
		n, err := strconv.ParseUint(rv, 10, 64)
		if err != nil {
			return nil, errAt("metadata.resourceVersion", fmt.Sprintf("%q: must be a decimal number", rv))
		}
		o.ResourceVersion = n
	}
	controller := ""
	for i, r := range m.GetOwnerReferences() {
		path := "metadata.ownerReferences[" + strconv.Itoa(i) + "]"
		for _, f := range []struct{ name, value string }{
			{"apiVersion", r.APIVersion}, {"kind", r.Kind}, {"name", r.Name}, {"uid", string(r.UID)},
		} {
			if f.value == "" {
				return nil, errAt(path+"."+f.name, "required")
			}
		}
		if gv, err := schema.ParseGroupVersion(r.APIVersion); err != nil || gv.Version == "" {
			return nil, errAt(path+".apiVersion", fmt.Sprintf("%q: must be <group>/<version> or <version>", r.APIVersion))
		}
		isController := r.Controller != nil && *r.Controller
		if isController {
			if controller != "" {
				return nil, errAt(path+".controller", fmt.Sprintf("only one owner may be the controller; %s is already", controller))
			}
			controller = r.Kind + "/" + r.Name
		}
		o.OwnerReferences = append(o.OwnerReferences, &shoalpb.OwnerReference{
			ApiVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, Uid: string(r.UID), Controller: isController,
		})
	}
	return o, nil
}

func invalid(path, value string, errs []string) *fieldErr {
	return errAt(path, fmt.Sprintf("%q: %s", value, strings.Join(errs, "; ")))
}

// ValidateObject re-checks an Object that arrived over gRPC with the rules
// Decode applies to a manifest: the kind is known and served at its
// apiVersion, names, labels and annotations are valid, the namespace fits
// the kind's scope, and spec decodes strictly into the Kubernetes type with
// only supported fields that pass the kind's validation. Unlike Decode it
// accepts internal kinds, which Shoal itself writes. A failure is an *Error
// without file or document.
func ValidateObject(o *shoalpb.Object) error {
	if o == nil {
		return &Error{Msg: "no object"}
	}
	if err := validateObject(o); err != nil {
		return fmt.Errorf("validate %s: %w", object.KeyOf(o), err)
	}
	return nil
}

func validateObject(o *shoalpb.Object) error {
	// Render the object as a manifest and decode that: one code path for
	// manifests and API objects.
	data, err := object.ToJSON(o)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return &Error{Msg: err.Error()}
	}
	if _, ferr := decodeJSON(data, fromAPI); ferr != nil {
		return &Error{Path: ferr.path, Msg: ferr.msg}
	}
	// ToJSON leaves out the namespace of cluster-scoped kinds and Decode
	// defaults an empty one, so check what ToJSON cannot show.
	k, _ := object.KindFor(o.Kind) // known: decodeJSON passed
	switch {
	case !k.Namespaced && o.Namespace != "":
		return &Error{Path: "metadata.namespace", Msg: fmt.Sprintf("%q: a %s is cluster-scoped and has no namespace", o.Namespace, k.Name)}
	case k.Namespaced && o.Namespace == "":
		return &Error{Path: "metadata.namespace", Msg: "required"}
	}
	return nil
}
