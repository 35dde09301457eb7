package manifest

import (
	"testing"

	sjson "sigs.k8s.io/json"
)

func TestFieldTree(t *testing.T) {
	tree := newFields(
		"metadata.name",
		"metadata.labels",
		"metadata.labels.ignored-because-labels-is-open",
		"spec.containers[].name",
		"spec.containers[].env",
		"spec.volumes{}",
		"spec.selector.*.key",
	)
	tests := []struct {
		name string
		doc  string
		path string // "" when accepted
	}{
		{"accepted", `{"metadata":{"name":"a","labels":{"x":"y"}}}`, ""},
		{"open subtree", `{"spec":{"containers":[{"name":"a","env":[{"name":"A","valueFrom":{"x":1}}]}]}}`, ""},
		{"unsupported top level", `{"status":{"phase":"x"}}`, "status"},
		{"unsupported in a list element", `{"spec":{"containers":[{"name":"a"},{"name":"b","image":"i"}]}}`, "spec.containers[1].image"},
		{"closed empty object", `{"spec":{"volumes":{"a":1}}}`, "spec.volumes.a"},
		{"closed empty object left empty", `{"spec":{"volumes":{}}}`, ""},
		{"any key", `{"spec":{"selector":{"a":{"key":"k"},"b":{"key":"k","op":"x"}}}}`, "spec.selector.b.op"},
		{"zero values ask for nothing", `{"spec":{"hostNetwork":false,"initContainers":[],"x":{"y":""}},"z":null,"n":0}`, ""},
		{"first in key order", `{"b":1,"a":1}`, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if err := sjson.UnmarshalCaseSensitivePreserveInts([]byte(tt.doc), &doc); err != nil {
				t.Fatal(err)
			}
			err := tree.check(doc, "")
			switch {
			case tt.path == "" && err != nil:
				t.Fatalf("check = %s: %s, want accepted", err.path, err.msg)
			case tt.path != "" && (err == nil || err.path != tt.path || err.msg != "not supported"):
				t.Fatalf("check = %+v, want %s: not supported", err, tt.path)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	doc := map[string]any{"status": 1, "metadata": map[string]any{"uid": "u", "name": "n"}, "data": 2}
	remove(doc, []string{"status", "metadata.uid", "metadata.selfLink", "missing.deep.path"})
	if _, ok := doc["status"]; ok {
		t.Error("status not removed")
	}
	if m := doc["metadata"].(map[string]any); len(m) != 1 || m["name"] != "n" {
		t.Errorf("metadata = %v, want only name", m)
	}
	if doc["data"] != 2 {
		t.Error("data removed")
	}
}
