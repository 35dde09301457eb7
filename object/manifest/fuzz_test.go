package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-dev/shoal/object"
	"google.golang.org/protobuf/proto"
)

// FuzzDecode checks that Decode never panics, fails only with an *Error, and
// that every object it accepts renders with object.ToJSON, decodes again to
// the same object, and passes ValidateObject.
func FuzzDecode(f *testing.F) {
	for _, name := range goodFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		cmHead + "data:\n  a: \"1\"\nbinaryData:\n  b: eA==\n",
		cmHead + "  labels: {a: b}\n  annotations: {x/y: z}\n---\n" + cmHead + "  namespace: other\n",
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: n}, spec: {}}\n",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j","resourceVersion":"3"},"data":{"k":"v"}}`,
		cmHead + "data:\n  a: b: c\n",
		"--- {a: b}\n",
		"a: &x [*x]\n",
		podDoc,
		deploymentDoc,
		hpaDoc,
		"apiVersion: shoal.dev/v1\nkind: PlacementGuard\nmetadata: {name: n1}\nspec: {revision: 1}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode(Source{Name: "fuzz.yaml", Data: data})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			return
		}
		for _, o := range objs {
			j, err := object.ToJSON(o)
			if err != nil {
				t.Fatalf("ToJSON(%v): %v", o, err)
			}
			again, err := Decode(Source{Name: "again.json", Data: j})
			if err != nil {
				t.Fatalf("decode of rendered %s: %v", j, err)
			}
			if len(again) != 1 || !proto.Equal(again[0], o) {
				t.Fatalf("round trip of %v through %s gave %v", o, j, again)
			}
			if err := ValidateObject(o); err != nil {
				t.Fatalf("ValidateObject(%v): %v", o, err)
			}
		}
	})
}
