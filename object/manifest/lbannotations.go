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
	return nil
}
