package manifest

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The helpers below word the errors of the kinds' validation alike.

// unsupportedValue is an enumerated field holding a value outside its set.
func unsupportedValue(path, value string, supported ...string) *fieldErr {
	quoted := make([]string, len(supported))
	for i, s := range supported {
		quoted[i] = strconv.Quote(s)
	}
	return errAt(path, fmt.Sprintf("%q: not supported; supported values: %s", value, strings.Join(quoted, ", ")))
}

// atLeast is a number below its minimum.
func atLeast[T ~int32 | ~int64](path string, value, min T) *fieldErr {
	return errAt(path, fmt.Sprintf("%d: must be greater than or equal to %d", value, min))
}

// nonNegative checks an optional count.
func nonNegative[T ~int32 | ~int64](path string, value *T) *fieldErr {
	if value != nil && *value < 0 {
		return atLeast(path, *value, 0)
	}
	return nil
}

// labelPair checks one key and value of a label map at path.
func labelPair(path, key, value string) *fieldErr {
	if errs := content.IsLabelKey(key); len(errs) > 0 {
		return errAt(path+"."+key, "invalid key: "+strings.Join(errs, "; "))
	}
	if errs := content.IsLabelValue(value); len(errs) > 0 {
		return invalid(path+"."+key, value, errs)
	}
	return nil
}

// validateLabelSelector checks a label selector with apimachinery's rules.
func validateLabelSelector(sel *metav1.LabelSelector, path string) *fieldErr {
	if sel == nil {
		return nil
	}
	for _, k := range sortedKeys(sel.MatchLabels) {
		if err := labelPair(path+".matchLabels", k, sel.MatchLabels[k]); err != nil {
			return err
		}
	}
	errs := metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, field.NewPath(path))
	return firstFieldErr(errs)
}

// firstFieldErr words the first of apimachinery's field errors like the
// others of this package.
func firstFieldErr(errs field.ErrorList) *fieldErr {
	if len(errs) == 0 {
		return nil
	}
	e := errs[0]
	switch e.Type {
	case field.ErrorTypeRequired:
		if e.Detail != "" {
			return errAt(e.Field, "required: "+e.Detail)
		}
		return errAt(e.Field, "required")
	case field.ErrorTypeInvalid, field.ErrorTypeNotSupported:
		value := fmt.Sprint(e.BadValue)
		if v := reflect.ValueOf(e.BadValue); v.Kind() == reflect.String {
			value = strconv.Quote(v.String())
		}
		return errAt(e.Field, value+": "+e.Detail)
	}
	return errAt(e.Field, e.ErrorBody())
}
