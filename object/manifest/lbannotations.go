package manifest

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Service annotations that tune Shoal's proxy.
const (
	// AnnotationLoadBalancer picks how the proxy spreads new connections
	// over a service's endpoints: "round-robin" (the default) or
	// "least-connections".
	AnnotationLoadBalancer = "shoal.dev/load-balancer"
	// AnnotationWeights splits new connections between groups of pods by
	// the value of one pod label, for canary and A/B releases:
	//
	//	shoal.dev/weights: "version: v1=90, v2=10"
	//
	// sends 90 % of connections to the Ready pods labelled version=v1 and
	// 10 % to those labelled version=v2, whatever the number of pods in
	// each group. Pods with another value of the label get none; a group
	// with no Ready pod gives its share to the others.
	AnnotationWeights = "shoal.dev/weights"
	// AnnotationRoutes sends HTTP requests to a group of pods by a request
	// header or cookie, for A/B releases, on the service's ports marked
	// appProtocol: http (the proxy then speaks HTTP on them and decides
	// per request):
	//
	//	shoal.dev/routes: "header X-Group=beta -> version=b; cookie group=beta -> version=b"
	//
	// The first rule that matches sends the request to the Ready pods
	// labelled version=b (503 when there is none); a request no rule
	// matches is balanced as the port's other settings say (weights
	// included). Every rule names the same label.
	AnnotationRoutes = "shoal.dev/routes"
)

// Load-balancing policies of AnnotationLoadBalancer.
const (
	RoundRobin       = "round-robin"
	LeastConnections = "least-connections"
)

// Weights is a parsed AnnotationWeights.
type Weights struct {
	Label  string
	Values []string // in the annotation's order
	Weight map[string]int
}

// ParseWeights parses an AnnotationWeights value.
func ParseWeights(s string) (Weights, error) {
	label, list, ok := strings.Cut(s, ":")
	label = strings.TrimSpace(label)
	if !ok || label == "" {
		return Weights{}, fmt.Errorf("%q: want LABEL: VALUE=WEIGHT, VALUE=WEIGHT (e.g. \"version: v1=90, v2=10\")", s)
	}
	if errs := validation.IsQualifiedName(label); len(errs) > 0 {
		return Weights{}, fmt.Errorf("label %q: %s", label, strings.Join(errs, "; "))
	}
	w := Weights{Label: label, Weight: map[string]int{}}
	total := 0
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		v, n, ok := strings.Cut(item, "=")
		v = strings.TrimSpace(v)
		if !ok {
			return Weights{}, fmt.Errorf("%q: want VALUE=WEIGHT", item)
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return Weights{}, fmt.Errorf("label value %q: %s", v, strings.Join(errs, "; "))
		}
		if _, dup := w.Weight[v]; dup {
			return Weights{}, fmt.Errorf("value %q given twice", v)
		}
		weight, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || weight < 0 || weight > 1000000 {
			return Weights{}, fmt.Errorf("%q: weight must be a whole number from 0 to 1000000", item)
		}
		w.Values = append(w.Values, v)
		w.Weight[v] = weight
		total += weight
	}
	if total == 0 {
		return Weights{}, fmt.Errorf("%q: the weights add up to 0", s)
	}
	return w, nil
}

// Routes is a parsed AnnotationRoutes.
type Routes struct {
	Label string // the pod label every rule's target names
	Rules []RouteRule
}

// RouteRule sends requests whose header (or cookie) Name has exactly Value
// to the pods whose Label is Target.
type RouteRule struct {
	Cookie bool // Name is a cookie, not a header
	Name   string
	Value  string
	Target string
}

// Match returns the target of the first rule a request matches, given its
// header and cookie lookups ("" when none matches).
func (r *Routes) Match(header func(name string) []string, cookie func(name string) (string, bool)) string {
	for _, rule := range r.Rules {
		if rule.Cookie {
			if v, ok := cookie(rule.Name); ok && v == rule.Value {
				return rule.Target
			}
			continue
		}
		for _, v := range header(rule.Name) {
			if v == rule.Value {
				return rule.Target
			}
		}
	}
	return ""
}

// ParseRoutes parses an AnnotationRoutes value: rules separated by ";",
// each "header NAME=VALUE -> LABEL=VALUE" or "cookie NAME=VALUE -> LABEL=VALUE".
func ParseRoutes(s string) (Routes, error) {
	const form = "want \"header NAME=VALUE -> LABEL=VALUE\" or \"cookie NAME=VALUE -> LABEL=VALUE\", separated by \";\""
	var r Routes
	for item := range strings.SplitSeq(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		match, target, ok := strings.Cut(item, "->")
		kind, cond, ok2 := strings.Cut(strings.TrimSpace(match), " ")
		if !ok || !ok2 {
			return Routes{}, fmt.Errorf("rule %q: %s", item, form)
		}
		var rule RouteRule
		switch kind {
		case "header":
		case "cookie":
			rule.Cookie = true
		default:
			return Routes{}, fmt.Errorf("rule %q: %q: want header or cookie", item, kind)
		}
		name, value, ok := strings.Cut(strings.TrimSpace(cond), "=")
		rule.Name, rule.Value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !isToken(rule.Name) {
			return Routes{}, fmt.Errorf("rule %q: %s name %q: want a token such as X-Group", item, kind, rule.Name)
		}
		if rule.Value == "" || strings.ContainsAny(rule.Value, "\";,\\\x00\r\n") {
			return Routes{}, fmt.Errorf("rule %q: value %q: want a non-empty value without quotes, commas, semicolons or backslashes", item, rule.Value)
		}
		label, tv, ok := strings.Cut(strings.TrimSpace(target), "=")
		label, tv = strings.TrimSpace(label), strings.TrimSpace(tv)
		if !ok || label == "" {
			return Routes{}, fmt.Errorf("rule %q: target %q: want LABEL=VALUE", item, strings.TrimSpace(target))
		}
		if errs := validation.IsQualifiedName(label); len(errs) > 0 {
			return Routes{}, fmt.Errorf("rule %q: label %q: %s", item, label, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(tv); len(errs) > 0 || tv == "" {
			return Routes{}, fmt.Errorf("rule %q: label value %q: want a non-empty label value", item, tv)
		}
		if r.Label != "" && label != r.Label {
			return Routes{}, fmt.Errorf("rule %q: label %q: every rule must name the same label (%q)", item, label, r.Label)
		}
		r.Label, rule.Target = label, tv
		r.Rules = append(r.Rules, rule)
	}
	if len(r.Rules) == 0 {
		return Routes{}, fmt.Errorf("%q: no rule; %s", s, form)
	}
	return r, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), as
// header and cookie names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validateLBAnnotations checks the proxy's annotations on a Service.
func validateLBAnnotations(ann map[string]string) *fieldErr {
	if v, ok := ann[AnnotationLoadBalancer]; ok && v != RoundRobin && v != LeastConnections {
		return unsupportedValue("metadata.annotations["+AnnotationLoadBalancer+"]", v, RoundRobin, LeastConnections)
	}
	if v, ok := ann[AnnotationWeights]; ok {
		if _, err := ParseWeights(v); err != nil {
			return errAt("metadata.annotations["+AnnotationWeights+"]", err.Error())
		}
	}
	if v, ok := ann[AnnotationRoutes]; ok {
		if _, err := ParseRoutes(v); err != nil {
			return errAt("metadata.annotations["+AnnotationRoutes+"]", err.Error())
		}
	}
	return nil
}
