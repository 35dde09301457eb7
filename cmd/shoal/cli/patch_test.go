package cli

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/object"
)

func TestMergePatch(t *testing.T) {
	var doc, patch map[string]any
	_ = json.Unmarshal([]byte(`{"a":{"b":1,"c":{"d":2}},"e":[1,2],"f":"x"}`), &doc)
	_ = json.Unmarshal([]byte(`{"a":{"b":null,"c":{"g":3}},"e":[3],"h":{"i":true}}`), &patch)
	mergePatch(doc, patch)
	got, _ := json.Marshal(doc)
	if want := `{"a":{"c":{"d":2,"g":3}},"e":[3],"f":"x","h":{"i":true}}`; string(got) != want {
		t.Fatalf("merge patch = %s; want %s", got, want)
	}
}

func TestPatched(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"tier": "front"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web", "version": "blue"},
			Ports: []corev1.ServicePort{{Port: 80}}}}
	cur, err := object.FromTyped("Service", svc)
	if err != nil {
		t.Fatal(err)
	}
	cur.ApiVersion, cur.Uid, cur.ResourceVersion = "v1", "uid-1", 7
	next, err := patched(cur, func(doc map[string]any) error {
		subMap(doc, "spec")["selector"] = map[string]any{"app": "web", "version": "green"}
		mergePatch(doc, map[string]any{"metadata": map[string]any{"labels": map[string]any{"tier": nil, "color": "green"}}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Service
	if err := object.Decode(next, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Selector["version"] != "green" || got.Spec.ClusterIP != "10.96.0.10" || next.GetUid() != "uid-1" ||
		next.GetLabels()["color"] != "green" || next.GetLabels()["tier"] != "" {
		t.Fatalf("patched: %+v labels %v uid %s", got.Spec, next.GetLabels(), next.GetUid())
	}
	// A patch that makes the object invalid is refused with its field path.
	_, err = patched(cur, func(doc map[string]any) error {
		subMap(doc, "spec")["selector"] = map[string]any{"app": "bad value!"}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "spec.selector") {
		t.Fatalf("invalid selector: %v", err)
	}
}
