package manifest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shoal-dev/shoal/object"
)

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkValues walks the generic document v beside the Go type t it decodes
// into, before strict decoding, and does two things on the way.
//
// It finds values that the typed decoder would refuse without a path: types
// that parse their own JSON (quantities, int-or-strings, times) fail the
// whole decode with a bare error, so each is tried on its own and a failure
// names its field. Fields t does not have and type mismatches are left to
// the strict decoder.
//
// It drops the null members of objects that are Go structs: null is unset
// (kubectl writes "creationTimestamp: null" into pod templates), and
// leaving it out keeps the stored spec canonical, as object.FromTyped
// writes it. Nulls in maps and lists mean something else and stay.
func checkValues(v any, t reflect.Type, path string) *fieldErr {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		data, err := json.Marshal(v)
		if err != nil { // cannot happen: v came from JSON
			return errAt(path, err.Error())
		}
		if err := json.Unmarshal(data, reflect.New(t).Interface()); err != nil {
			return errAt(path, valueMessage(t, v, err))
		}
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Struct:
			fields := jsonFields(t)
			for _, k := range sortedKeys(x) {
				ft, ok := fields[k]
				switch {
				case !ok:
				case x[k] == nil:
					delete(x, k)
				default:
					if err := checkValues(x[k], ft, join(path, k)); err != nil {
						return err
					}
				}
			}
		case reflect.Map:
			for _, k := range sortedKeys(x) {
				if err := checkValues(x[k], t.Elem(), join(path, k)); err != nil {
					return err
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, e := range x {
				if err := checkValues(e, t.Elem(), join(path, "["+strconv.Itoa(i)+"]")); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// valueMessage says what is wrong with v, the JSON of a value of type t that
// failed to decode with err.
func valueMessage(t reflect.Type, v any, err error) string {
	shown := fmt.Sprint(v)
	if s, ok := v.(string); ok {
		shown = strconv.Quote(s)
	}
	scalar := false
	switch v.(type) {
	case string, int64, float64, json.Number:
		scalar = true
	}
	switch t {
	case reflect.TypeFor[resource.Quantity]():
		if scalar {
			return shown + " is not a valid quantity"
		}
		return "must be a quantity (such as \"500m\", \"128Mi\" or 2), not " + article(jsonKind(v))
	case reflect.TypeFor[intstr.IntOrString]():
		if _, ok := v.(float64); ok {
			return shown + ": must be an integer or a string"
		}
		return "must be an integer or a string, not " + article(jsonKind(v))
	case reflect.TypeFor[metav1.Time](), reflect.TypeFor[metav1.MicroTime]():
		if _, ok := v.(string); ok {
			return shown + " is not a valid time (RFC 3339, such as \"2026-01-02T15:04:05Z\")"
		}
		return "must be an RFC 3339 time string, not " + article(jsonKind(v))
	}
	return "invalid value: " + err.Error()
}

// jsonFields maps the JSON member names of struct type t to their Go
// types, as encoding/json sees them (object.JSONFields).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for name, f := range object.JSONFields(t) {
		m[name] = f.Type
	}
	return m
}
