package object

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/proto/shoalpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Decode fills into, a pointer to a typed Kubernetes struct such as
// *corev1.Pod, from the stored object o: the result equals decoding the JSON
// that ToJSON renders, but it is built straight from the stored parts (the
// spec document, the metadata fields, the status) without rendering, since
// the scheduler, the kubelet and the bind check decode on every change.
// Decoding is not strict; stored objects were validated when they were
// written. Labels and annotations are copies the caller may change.
func Decode(o *shoalpb.Object, into any) error {
	if o == nil {
		return fmt.Errorf("decode into %T: nil object", into)
	}
	m, ok := into.(metav1.Object)
	if !ok {
		return decodeViaJSON(o, into)
	}
	if len(o.Spec) > 0 {
		if err := json.Unmarshal(o.Spec, into); err != nil {
			return fmt.Errorf("decode %s into %T: %w", KeyOf(o), into, err)
		}
	}
	if t, ok := into.(interface{ GetObjectKind() schema.ObjectKind }); ok {
		t.GetObjectKind().SetGroupVersionKind(schema.FromAPIVersionAndKind(o.ApiVersion, o.Kind))
	}
	m.SetName(o.Name)
	if k, ok := KindFor(o.Kind); !ok || k.Namespaced {
		m.SetNamespace(o.Namespace)
	}
	m.SetUID(types.UID(o.Uid))
	if o.ResourceVersion != 0 {
		m.SetResourceVersion(strconv.FormatUint(o.ResourceVersion, 10))
	}
	m.SetGeneration(o.Generation)
	if o.CreateTimeUnixNano != 0 {
		// As rendered: whole seconds, read back in local time.
		m.SetCreationTimestamp(metav1.NewTime(time.Unix(0, o.CreateTimeUnixNano).Truncate(time.Second).Local()))
	}
	if len(o.Labels) > 0 {
		m.SetLabels(maps.Clone(o.Labels))
	}
	if len(o.Annotations) > 0 {
		m.SetAnnotations(maps.Clone(o.Annotations))
	}
	if len(o.OwnerReferences) > 0 {
		refs := make([]metav1.OwnerReference, 0, len(o.OwnerReferences))
		for _, r := range o.OwnerReferences {
			ref := metav1.OwnerReference{APIVersion: r.ApiVersion, Kind: r.Kind, Name: r.Name, UID: types.UID(r.Uid)}
			if r.Controller {
				ref.Controller = ptr(true)
			}
			refs = append(refs, ref)
		}
		m.SetOwnerReferences(refs)
	}
	status := o.Status
	if len(status) == 0 && o.Kind == "Namespace" {
		status = []byte(`{"phase":"Active"}`) // as rendered
	}
	if len(status) > 0 {
		doc := make([]byte, 0, len(status)+11)
		doc = append(append(append(doc, `{"status":`...), status...), '}')
		if err := json.Unmarshal(doc, into); err != nil {
			return fmt.Errorf("decode status of %s into %T: %w", KeyOf(o), into, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// decodeViaJSON decodes the rendered JSON: for targets that are not
// Kubernetes objects.
func decodeViaJSON(o *shoalpb.Object, into any) error {
	j, err := ToJSON(o)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(j, into); err != nil {
		return fmt.Errorf("decode %s into %T: %w", KeyOf(o), into, err)
	}
	return nil
}

// StatusOf fills into, a pointer to a typed status such as
// *corev1.PodStatus, from o's status. An object without status leaves into
// unchanged.
func StatusOf(o *shoalpb.Object, into any) error {
	if len(o.GetStatus()) == 0 {
		return nil
	}
	if err := json.Unmarshal(o.Status, into); err != nil {
		return fmt.Errorf("decode status of %s into %T: %w", KeyOf(o), into, err)
	}
	return nil
}

// FromTyped turns v, a typed Kubernetes object of the registered kind (such
// as *corev1.Pod or *appsv1.ReplicaSet), into an Object: identity, labels,
// annotations and owner references from its metadata, spec from every other
// top-level field but status, and status from status.
//
// Spec and status are canonical (see prune): keys sorted; spec leaves out
// null and zero values as a user's manifest does, status leaves out only
// null and empty omitempty structs, as Kubernetes prints it; a zero status
// is no status. So FromTyped of an object that Decode produced gives back
// the same spec and status bytes, and a controller that rewrites an object
// without changing it does not bump its generation.
//
// The apiVersion comes from the registry; a TypeMeta that disagrees with
// kind is an error.
func FromTyped(kind string, v any) (*shoalpb.Object, error) {
	k, ok := KindFor(kind)
	if !ok {
		return nil, fmt.Errorf("convert %T: unknown kind %q", v, kind)
	}
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("convert %T to %s: not a struct", v, kind)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("convert %T to %s: %w", v, kind, err)
	}
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("convert %T to %s: metadata: %w", v, kind, err)
	}
	if head.Kind != "" && head.Kind != kind {
		return nil, fmt.Errorf("convert %T to %s: its kind is %q", v, kind, head.Kind)
	}
	if head.APIVersion != "" && head.APIVersion != k.APIVersion {
		return nil, fmt.Errorf("convert %T to %s: apiVersion %q does not serve kind %s", v, kind, head.APIVersion, kind)
	}
	m := head.Metadata
	o := &shoalpb.Object{
		Kind:        kind,
		ApiVersion:  k.APIVersion,
		Namespace:   m.Namespace,
		Name:        m.Name,
		Uid:         string(m.UID),
		Generation:  m.Generation,
		Labels:      m.Labels,
		Annotations: m.Annotations,
	}
	if m.ResourceVersion != "" {
		rv, err := strconv.ParseUint(m.ResourceVersion, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("convert %s %q: resourceVersion %q is not a decimal number", kind, m.Name, m.ResourceVersion)
		}
		o.ResourceVersion = rv
	}
	if !m.CreationTimestamp.IsZero() {
		o.CreateTimeUnixNano = m.CreationTimestamp.UnixNano()
	}
	for _, r := range m.OwnerReferences {
		o.OwnerReferences = append(o.OwnerReferences, &shoalpb.OwnerReference{
			ApiVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, Uid: string(r.UID),
			Controller: r.Controller != nil && *r.Controller,
		})
	}

	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // keep large integers exact
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("convert %T to %s: %w", v, kind, err)
	}
	if s, ok := doc["status"]; ok && !zeroStatus(v) {
		if f, ok := JSONFields(t)["status"]; ok {
			s, _ = prune(s, f.Type, true)
		}
		if o.Status, err = json.Marshal(s); err != nil {
			return nil, fmt.Errorf("convert %s %q: status: %w", kind, m.Name, err)
		}
	}
	delete(doc, "status")
	prune(doc, t, false)
	for _, r := range reserved {
		delete(doc, r)
	}
	if len(doc) > 0 {
		if o.Spec, err = json.Marshal(doc); err != nil {
			return nil, fmt.Errorf("convert %s %q: spec: %w", kind, m.Name, err)
		}
	}
	return o, nil
}

var (
	marshalerType   = reflect.TypeFor[json.Marshaler]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// prune removes from v, the decoded JSON of a value of Go type t, the struct
// members that are unset, and reports whether what is left decodes to t's
// zero value. Unset are null, and zero values of fields that are not
// pointers (encoding/json writes "resources": {} for an empty struct; the
// manifest a user writes leaves it out). With keepZero, only zero structs
// of omitempty fields go, and the zero values of other fields stay, as
// Kubernetes prints them in status ("restartCount": 0). Pointers keep their
// zero values (replicas: 0 and selector: {} mean something). List elements
// and map entries are never removed, only pruned inside.
func prune(v any, t reflect.Type, keepZero bool) (any, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return v, zeroJSON(v) // its own JSON form (Quantity, IntOrString, Time): opaque
	}
	switch x := v.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Struct:
			fields := JSONFields(t)
			zero := true
			for name, e := range x {
				f, ok := fields[name]
				if !ok {
					zero = false
					continue
				}
				e, z := prune(e, f.Type, keepZero)
				x[name] = e
				pointer := f.Type.Kind() == reflect.Pointer
				switch {
				case e == nil:
					delete(x, name)
				case z && !pointer && (!keepZero || f.OmitEmpty && f.Type.Kind() == reflect.Struct):
					delete(x, name)
				case !z || pointer:
					zero = false
				}
			}
			return x, zero
		case reflect.Map:
			for key, e := range x {
				x[key], _ = prune(e, t.Elem(), keepZero)
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, e := range x {
				x[i], _ = prune(e, t.Elem(), keepZero)
			}
		}
	}
	return v, zeroJSON(v)
}

// zeroJSON reports whether v is the JSON of a Go zero value.
func zeroJSON(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case json.Number:
		f, err := v.Float64()
		return err == nil && f == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// JSONField is what encoding/json makes of a struct field: its Go type and
// whether it is omitted when empty.
type JSONField struct {
	Type      reflect.Type
	OmitEmpty bool
}

var fieldCache sync.Map // reflect.Type -> map[string]JSONField

// JSONFields maps the JSON member names of struct type t to their fields,
// following encoding/json: embedded structs without a name are inlined, and
// a field of the outer struct hides one of the same name inside.
func JSONFields(t reflect.Type) map[string]JSONField {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]JSONField)
	}
	m := map[string]JSONField{}
	var inline []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				inline = append(inline, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = JSONField{Type: f.Type, OmitEmpty: slices.Contains(strings.Split(opts, ","), "omitempty")}
	}
	for _, it := range inline {
		for name, f := range JSONFields(it) {
			if _, hidden := m[name]; !hidden {
				m[name] = f
			}
		}
	}
	fieldCache.Store(t, m)
	return m
}

// zeroStatus reports whether v, a typed object, has a status field that is
// its zero value, or none at all.
func zeroStatus(v any) bool {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	t := rv.Type()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name == "status" {
			return rv.Field(i).IsZero()
		}
	}
	return true
}
