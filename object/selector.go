package object

import (
	"fmt"

	"github.com/shoal-dev/shoal/proto/shoalpb"
	"k8s.io/apimachinery/pkg/labels"
)

// ParseSelector parses a Kubernetes label selector ("app=web,tier!=db",
// "env in (a,b)", "!canary"). The empty string selects everything.
func ParseSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad label selector %q: %w", s, err)
	}
	return sel, nil
}

// Matches reports whether o's labels satisfy sel. A nil selector matches
// every object.
func Matches(sel labels.Selector, o *shoalpb.Object) bool {
	if sel == nil {
		return true
	}
	return sel.Matches(labels.Set(o.GetLabels()))
}
