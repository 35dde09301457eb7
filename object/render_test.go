package object

import (
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

var created = time.Date(2026, 11, 22, 10, 30, 0, 123, time.UTC).UnixNano()

func TestToJSON(t *testing.T) {
	tests := []struct {
		name    string
		obj     *shoalpb.Object
		want    string
		wantErr string
	}{
		{
			name: "configmap full",
			obj: &shoalpb.Object{
				Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default", Name: "foo",
				Uid: "u-1", ResourceVersion: 42, Generation: 3, CreateTimeUnixNano: created,
				Labels:      map[string]string{"b": "2", "a": "1"},
				Annotations: map[string]string{"note": "x"},
				OwnerReferences: []*shoalpb.OwnerReference{
					{ApiVersion: "apps/v1", Kind: "Deployment", Name: "web", Uid: "u-0", Controller: true},
				},
				Spec: []byte(`{"immutable":true,"data":{"k":"v"}}`),
			},
			want: `{"apiVersion":"v1","data":{"k":"v"},"immutable":true,"kind":"ConfigMap",` +
				`"metadata":{"name":"foo","namespace":"default","uid":"u-1","resourceVersion":"42","generation":3,` +
				`"creationTimestamp":"2026-11-22T10:30:00Z","labels":{"a":"1","b":"2"},"annotations":{"note":"x"},` +
				`"ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":"u-0","controller":true}]}}`,
		},
		{
			name: "configmap minimal",
			obj:  &shoalpb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "ns1", Name: "bar"},
			want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bar","namespace":"ns1"}}`,
		},
		{
			name: "namespace gets Active status and no namespace",
			obj:  &shoalpb.Object{Kind: "Namespace", ApiVersion: "v1", Namespace: "ignored", Name: "team-a"},
			want: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"},"status":{"phase":"Active"}}`,
		},
		{
			name: "stored status wins",
			obj: &shoalpb.Object{Kind: "Namespace", ApiVersion: "v1", Name: "team-a",
				Spec: []byte(`{"spec":{}}`), Status: []byte(`{"phase":"Terminating"}`)},
			want: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"},"spec":{},"status":{"phase":"Terminating"}}`,
		},
		{
			name: "large integers stay exact",
			obj:  &shoalpb.Object{Kind: "Thing", ApiVersion: "x/v1", Name: "n", Spec: []byte(`{"n":12345678901234567890}`)},
			want: `{"apiVersion":"x/v1","kind":"Thing","metadata":{"name":"n"},"n":12345678901234567890}`,
		},
		{
			name:    "spec not an object",
			obj:     &shoalpb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "d", Name: "x", Spec: []byte(`[1]`)},
			wantErr: "render ConfigMap/d/x: spec is not a JSON object",
		},
		{
			name:    "spec with reserved field",
			obj:     &shoalpb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "d", Name: "x", Spec: []byte(`{"metadata":{}}`)},
			wantErr: `spec has reserved field "metadata"`,
		},
		{
			name:    "spec with trailing data",
			obj:     &shoalpb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "d", Name: "x", Spec: []byte(`{} {}`)},
			wantErr: "data after its JSON object",
		},
		{
			name:    "bad status",
			obj:     &shoalpb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "d", Name: "x", Status: []byte(`{`)},
			wantErr: "status is not valid JSON",
		},
		{
			name:    "nil",
			obj:     nil,
			wantErr: "nil object",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ToJSON(tt.obj)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ToJSON error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ToJSON: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("ToJSON =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestToYAML(t *testing.T) {
	o := &shoalpb.Object{
		Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default", Name: "foo",
		ResourceVersion: 7, Labels: map[string]string{"app": "web"},
		Spec: []byte(`{"data":{"k":"v"}}`),
	}
	got, err := ToYAML(o)
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: v1
data:
  k: v
kind: ConfigMap
metadata:
  labels:
    app: web
  name: foo
  namespace: default
  resourceVersion: "7"
`
	if string(got) != want {
		t.Fatalf("ToYAML =\n%s\nwant\n%s", got, want)
	}
}

func TestListJSON(t *testing.T) {
	tests := []struct {
		name string
		objs []*shoalpb.Object
		want string
	}{
		{"empty", nil, `{"apiVersion":"v1","kind":"List","items":[]}`},
		{
			"two",
			[]*shoalpb.Object{
				{Kind: "Namespace", ApiVersion: "v1", Name: "a"},
				{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "a", Name: "c"},
			},
			`{"apiVersion":"v1","kind":"List","items":[` +
				`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"},"status":{"phase":"Active"}},` +
				`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a"}}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ListJSON(tt.objs)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("ListJSON =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if _, err := ListJSON([]*shoalpb.Object{{Kind: "ConfigMap", Spec: []byte("x")}}); err == nil {
		t.Fatal("ListJSON of a broken object: want an error")
	}
}
