package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestValidateObjectAcceptsDecoded(t *testing.T) {
	for _, file := range goodFiles {
		objs, err := Decode(readTestdata(t, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			// Server-owned fields do not matter to validation.
			o.Uid, o.Generation, o.CreateTimeUnixNano, o.Status = "u", 4, 1, []byte(`{"x":1}`)
			if err := ValidateObject(o); err != nil {
				t.Errorf("%s: ValidateObject(%v) = %v", file, o, err)
			}
		}
	}
}

func guard(spec string) *shoalpb.Object {
	return &shoalpb.Object{Kind: "PlacementGuard", ApiVersion: "shoal.dev/v1", Name: "inter-pod", Spec: []byte(spec)}
}

func TestValidateObjectAcceptsInternalKinds(t *testing.T) {
	for _, o := range []*shoalpb.Object{
		guard(`{"spec":{"revision":3}}`),
		guard(``),
		guard(`{"spec":{}}`),
	} {
		if err := ValidateObject(o); err != nil {
			t.Errorf("ValidateObject(%s) = %v", o.Spec, err)
		}
	}
}

func TestValidateObject(t *testing.T) {
	cm := func(edit func(o *shoalpb.Object)) *shoalpb.Object {
		o := &shoalpb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default", Name: "cm",
			Spec: []byte(`{"data":{"a":"b"}}`)}
		edit(o)
		return o
	}
	tests := []struct {
		name string
		obj  *shoalpb.Object
		path string
		msg  string // prefix of Error.Msg
		want string // prefix of Error()
	}{
		{name: "nil", obj: nil, msg: "no object"},
		{
			name: "unknown kind",
			obj:  &shoalpb.Object{Kind: "Frobnicator", ApiVersion: "v1", Namespace: "default", Name: "p"},
			path: "kind", msg: `kind "Frobnicator" (apiVersion "v1"): unknown kind`,
			want: `validate Frobnicator/default/p: kind "Frobnicator" (apiVersion "v1"): unknown kind`,
		},
		{
			name: "List is not a stored kind",
			obj:  &shoalpb.Object{Kind: "List", ApiVersion: "v1", Name: "l", Spec: []byte(`{"items":[]}`)},
			path: "kind", msg: `kind "List"`,
		},
		{
			name: "wrong apiVersion",
			obj:  cm(func(o *shoalpb.Object) { o.ApiVersion = "apps/v1" }),
			path: "apiVersion", msg: `apiVersion "apps/v1" does not serve kind "ConfigMap"`,
		},
		{
			name: "bad name",
			obj:  cm(func(o *shoalpb.Object) { o.Name = "Bad_Name" }),
			path: "metadata.name", msg: `"Bad_Name": a lowercase RFC 1123 subdomain`,
			want: `validate ConfigMap/default/Bad_Name: metadata.name: "Bad_Name"`,
		},
		{
			name: "no name",
			obj:  cm(func(o *shoalpb.Object) { o.Name = "" }),
			path: "metadata.name", msg: "required",
		},
		{
			name: "namespaced without namespace",
			obj:  cm(func(o *shoalpb.Object) { o.Namespace = "" }),
			path: "metadata.namespace", msg: "required",
		},
		{
			name: "cluster-scoped with namespace",
			obj:  &shoalpb.Object{Kind: "Namespace", ApiVersion: "v1", Namespace: "default", Name: "n"},
			path: "metadata.namespace", msg: `"default": a Namespace is cluster-scoped`,
		},
		{
			name: "bad label",
			obj:  cm(func(o *shoalpb.Object) { o.Labels = map[string]string{"app": "a b"} }),
			path: "metadata.labels.app", msg: `"a b"`,
		},
		{
			name: "owner reference without uid",
			obj: cm(func(o *shoalpb.Object) {
				o.OwnerReferences = []*shoalpb.OwnerReference{{ApiVersion: "v1", Kind: "Namespace", Name: "n"}}
			}),
			path: "metadata.ownerReferences[0].uid", msg: "required",
		},
		{
			name: "unknown spec field",
			obj:  cm(func(o *shoalpb.Object) { o.Spec = []byte(`{"dataa":{}}`) }),
			path: "dataa", msg: "unknown field",
		},
		{
			name: "spec field of the wrong type",
			obj:  cm(func(o *shoalpb.Object) { o.Spec = []byte(`{"data":{"a":1}}`) }),
			path: "data.a", msg: "must be a string, not a number",
		},
		{
			name: "unsupported spec field",
			obj:  &shoalpb.Object{Kind: "Namespace", ApiVersion: "v1", Name: "n", Spec: []byte(`{"spec":{"finalizers":["x"]}}`)},
			path: "spec.finalizers", msg: "not supported",
		},
		{
			name: "placement guard with an unknown field",
			obj:  guard(`{"spec":{"revision":1,"cpu":3}}`),
			path: "spec.cpu", msg: "unknown field",
		},
		{
			name: "placement guard with a negative count",
			obj:  guard(`{"spec":{"revision":-2}}`),
			path: "spec.revision", msg: "-2: must be greater than or equal to 0",
		},
		{
			name: "placement guard of the wrong type",
			obj:  guard(`{"spec":{"revision":"1"}}`),
			path: "spec.revision", msg: "must be an integer, not a string",
		},
		{
			name: "placement guard with a namespace",
			obj:  func() *shoalpb.Object { o := guard(`{}`); o.Namespace = "default"; return o }(),
			path: "metadata.namespace", msg: `"default": a PlacementGuard is cluster-scoped`,
		},
		{
			name: "pod bound to a bad node name",
			obj: &shoalpb.Object{Kind: "Pod", ApiVersion: "v1", Namespace: "default", Name: "p",
				Spec: []byte(`{"spec":{"nodeName":"N_1","containers":[{"name":"c","image":"i"}]}}`)},
			path: "spec.nodeName", msg: `"N_1": a lowercase RFC 1123 subdomain`,
		},
		{
			name: "spec not an object",
			obj:  cm(func(o *shoalpb.Object) { o.Spec = []byte(`"x"`) }),
			msg:  "spec is not a JSON object",
		},
		{
			name: "spec with metadata",
			obj:  cm(func(o *shoalpb.Object) { o.Spec = []byte(`{"metadata":{"name":"other"}}`) }),
			msg:  `spec has reserved field "metadata"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateObject(tt.obj)
			if err == nil {
				t.Fatal("ValidateObject succeeded; want an error")
			}
			t.Log(err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.File != "" || e.Doc != 0 || e.Path != tt.path || !strings.HasPrefix(e.Msg, tt.msg) {
				t.Fatalf("error = %#v\nwant Path %q, Msg starting %q", e, tt.path, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Error() = %q, want prefix %q", err.Error(), tt.want)
			}
		})
	}
}
