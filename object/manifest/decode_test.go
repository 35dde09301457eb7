package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/proto/shoalpb"
	"google.golang.org/protobuf/proto"
)

// summary is what a test checks of a decoded object.
type summary struct {
	key    string
	rv     uint64
	labels string
	spec   string
	owners int
}

func summarize(o *shoalpb.Object) summary {
	var ls []string
	for _, k := range sortedKeys(o.Labels) {
		ls = append(ls, k+"="+o.Labels[k])
	}
	return summary{key: object.KeyOf(o), rv: o.ResourceVersion, labels: strings.Join(ls, ","), spec: string(o.Spec), owners: len(o.OwnerReferences)}
}

func readTestdata(t *testing.T, name string) Source {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Source{Name: name, Data: data}
}

func TestDecodeGood(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []summary
	}{
		{
			name: "multi-document with comments, empty documents and a List",
			file: "good.yaml",
			want: []summary{
				{key: "Namespace//team-a", labels: "team=a"},
				{key: "ConfigMap/team-a/web-config", labels: "app=web,app.kubernetes.io/part-of=shop", owners: 1,
					spec: `{"binaryData":{"logo.png":"iVBORw0KGgo="},"data":{"LOG_LEVEL":"debug","config.json":"{\"port\": 8080}\n"},"immutable":false}`},
				{key: "ConfigMap/default/defaults", rv: 42, spec: `{"data":{"empty":""}}`},
				{key: "ConfigMap/default/one", spec: `{"data":{"a":"1"}}`},
				{key: "Namespace//team-b", spec: `{"spec":{}}`},
			},
		},
		{
			name: "get -o yaml output: server-owned fields and status ignored, resourceVersion kept",
			file: "getoutput.yaml",
			want: []summary{
				{key: "ConfigMap/default/web", rv: 17, labels: "app=web", spec: `{"data":{"k":"v"}}`},
				{key: "Namespace//team-c", rv: 5},
			},
		},
		{
			name: "JSON objects one after another",
			file: "stream.json",
			want: []summary{
				{key: "Namespace//json-ns"},
				{key: "ConfigMap/json-ns/json-cm", spec: `{"data":{"big":"1","path":"a/b"}}`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var got []summary
			for _, o := range objs {
				got = append(got, summarize(o))
				if o.Uid != "" || o.Generation != 0 || o.CreateTimeUnixNano != 0 || len(o.Status) != 0 {
					t.Errorf("%s: server-owned fields set: %v", object.KeyOf(o), o)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d objects %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("object %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodeDetails(t *testing.T) {
	objs, err := Decode(readTestdata(t, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cm := objs[1]
	if cm.Kind != "ConfigMap" || cm.ApiVersion != "v1" {
		t.Errorf("kind/apiVersion = %s %s", cm.Kind, cm.ApiVersion)
	}
	if got := cm.Annotations["example.com/Owner"]; got != "ops" {
		t.Errorf("annotation = %q, want ops", got)
	}
	want := &shoalpb.OwnerReference{ApiVersion: "apps/v1", Kind: "Deployment", Name: "web", Uid: "0b4c2a3e-1", Controller: true}
	if !proto.Equal(cm.OwnerReferences[0], want) {
		t.Errorf("owner reference = %v, want %v", cm.OwnerReferences[0], want)
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "---\n---\n", "~\n", "apiVersion: v1\nkind: List\nitems: []\n"} {
		objs, err := Decode(Source{Name: "e.yaml", Data: []byte(in)})
		if err != nil || len(objs) != 0 {
			t.Errorf("Decode(%q) = %v, %v; want nothing", in, objs, err)
		}
	}
}

const cmHead = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		doc     int
		path    string
		msg     string // prefix of Error.Msg
		wantErr string // whole Error(), when set
	}{
		{
			name: "unknown metadata field",
			in:   cmHead + "---\n" + cmHead + "  foo: bar\n",
			doc:  2, path: "metadata.foo", msg: "unknown field",
			wantErr: "x.yaml: document 2: metadata.foo: unknown field",
		},
		{
			name: "unknown top-level field",
			in:   cmHead + "spec:\n  a: b\n",
			doc:  1, path: "spec", msg: "unknown field",
		},
		{
			name: "several unknown fields start with the first in key order",
			in:   cmHead + "  foo: 1\n  bar: 2\n",
			doc:  1, path: "metadata.bar", msg: "unknown field; also metadata.foo: unknown field",
		},
		{
			name: "unknown kind",
			in:   "apiVersion: v1\nkind: Frobnicator\nmetadata:\n  name: x\n",
			doc:  1, path: "kind", msg: `kind "Frobnicator" (apiVersion "v1"): unknown kind`,
			wantErr: `x.yaml: document 1: kind "Frobnicator" (apiVersion "v1"): unknown kind`,
		},
		{
			name: "kind in the wrong case",
			in:   "apiVersion: v1\nkind: configmap\nmetadata:\n  name: x\n",
			doc:  1, path: "kind", msg: `kind "configmap" (apiVersion "v1"): unknown kind`,
		},
		{
			name: "apiVersion does not serve kind",
			in:   "apiVersion: apps/v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
			doc:  1, path: "apiVersion",
			wantErr: `x.yaml: document 1: apiVersion "apps/v1" does not serve kind "ConfigMap"`,
		},
		{name: "missing kind", in: "apiVersion: v1\nmetadata:\n  name: x\n", doc: 1, path: "kind", msg: "required"},
		{name: "missing apiVersion", in: "kind: ConfigMap\nmetadata:\n  name: x\n", doc: 1, path: "apiVersion", msg: "required"},
		{name: "kind not a string", in: "apiVersion: v1\nkind: [a]\n", doc: 1, path: "kind", msg: "must be a string, not a list"},
		{
			name: "missing name",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n",
			doc:  1, path: "metadata.name", msg: "required",
			wantErr: "x.yaml: document 1: metadata.name: required",
		},
		{
			name: "bad configmap name",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
			doc:  1, path: "metadata.name", msg: `"Bad_Name": a lowercase RFC 1123 subdomain must consist of`,
		},
		{
			name: "namespace name must be a label",
			in:   "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a.b\n",
			doc:  1, path: "metadata.name", msg: `"a.b": must not contain dots`,
		},
		{
			name: "configmap name may have dots",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a.b\n  namespace: Bad\n",
			doc:  1, path: "metadata.namespace", msg: `"Bad": a lowercase RFC 1123 label`,
		},
		{
			name: "cluster-scoped kind with a namespace",
			in:   "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  namespace: default\n",
			doc:  1, path: "metadata.namespace", msg: `"default": a Namespace is cluster-scoped and has no namespace`,
		},
		{
			name: "bad label key",
			in:   cmHead + "  labels:\n    bad key: x\n",
			doc:  1, path: "metadata.labels.bad key", msg: "invalid key: name part must consist of",
		},
		{
			name: "bad label value",
			in:   cmHead + "  labels:\n    app: a b\n",
			doc:  1, path: "metadata.labels.app", msg: `"a b": a valid label must be`,
		},
		{
			name: "label value of the wrong type",
			in:   cmHead + "  labels:\n    app: web\n    replicas: 3\n",
			doc:  1, path: "metadata.labels.replicas", msg: "must be a string, not a number",
		},
		{
			name: "bad annotation key",
			in:   cmHead + "  annotations:\n    a/b/c: x\n",
			doc:  1, path: "metadata.annotations.a/b/c", msg: "invalid key:",
		},
		{
			name: "bad data key",
			in:   cmHead + "data:\n  a b: x\n",
			doc:  1, path: "data.a b", msg: "invalid key: a valid config key must consist of",
		},
		{
			name: "data value of the wrong type",
			in:   cmHead + "data:\n  ok: \"1\"\n  port: 8080\n",
			doc:  1, path: "data.port", msg: "must be a string, not a number",
		},
		{
			name: "YAML boolean where a string belongs",
			in:   cmHead + "data:\n  enabled: yes\n",
			doc:  1, path: "data.enabled", msg: "must be a string, not a bool (YAML reads unquoted y, n",
		},
		{
			name: "data not a map",
			in:   cmHead + "data: [a]\n",
			doc:  1, path: "data", msg: "must be an object, not a list",
		},
		{
			name: "key in data and binaryData",
			in:   cmHead + "data:\n  k: x\nbinaryData:\n  k: eA==\n",
			doc:  1, path: "binaryData.k", msg: `key "k" is also in data`,
		},
		{
			name: "binaryData not base64",
			in:   cmHead + "binaryData:\n  k: \"!!\"\n",
			doc:  1, path: "binaryData.k", msg: "must be base64",
		},
		{
			name: "immutable not a bool",
			in:   cmHead + "immutable: maybe\n",
			doc:  1, path: "immutable", msg: "must be a boolean",
		},
		{
			name: "unsupported metadata field",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cm-\n",
			doc:  1, path: "metadata.generateName", msg: "not supported",
			wantErr: "x.yaml: document 1: metadata.generateName: not supported",
		},
		{
			name: "finalizers not supported",
			in:   cmHead + "  finalizers: [example.com/x]\n",
			doc:  1, path: "metadata.finalizers", msg: "not supported",
		},
		{
			name: "deletionTimestamp not supported",
			in:   cmHead + "  deletionTimestamp: \"2026-01-01T00:00:00Z\"\n",
			doc:  1, path: "metadata.deletionTimestamp", msg: "not supported",
		},
		{
			name: "namespace spec finalizers not supported",
			in:   "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\nspec:\n  finalizers: [kubernetes]\n",
			doc:  1, path: "spec.finalizers", msg: "not supported",
		},
		{
			name: "owner reference field not supported",
			in:   cmHead + "  ownerReferences:\n  - {apiVersion: v1, kind: Namespace, name: a, uid: u, blockOwnerDeletion: true}\n",
			doc:  1, path: "metadata.ownerReferences[0].blockOwnerDeletion", msg: "not supported",
		},
		{
			name: "owner reference without uid",
			in:   cmHead + "  ownerReferences:\n  - {apiVersion: v1, kind: Namespace, name: a, uid: u}\n  - {apiVersion: v1, kind: Namespace, name: b}\n",
			doc:  1, path: "metadata.ownerReferences[1].uid", msg: "required",
		},
		{
			name: "owner reference of the wrong type",
			in:   cmHead + "  ownerReferences:\n  - {apiVersion: v1, kind: Namespace, name: a, uid: u}\n  - {apiVersion: v1, kind: Namespace, name: 7, uid: u}\n",
			doc:  1, path: "metadata.ownerReferences[1].name", msg: "must be a string, not a number",
		},
		{
			name: "two controllers",
			in: cmHead + "  ownerReferences:\n  - {apiVersion: v1, kind: Namespace, name: a, uid: u, controller: true}\n" +
				"  - {apiVersion: v1, kind: Namespace, name: b, uid: v, controller: true}\n",
			doc: 1, path: "metadata.ownerReferences[1].controller", msg: "only one owner may be the controller",
		},
		{
			name: "bad resourceVersion",
			in:   cmHead + "  resourceVersion: abc\n",
			doc:  1, path: "metadata.resourceVersion", msg: `"abc": must be a decimal number`,
		},
		{
			name: "duplicate YAML key with its line in the file",
			in:   cmHead + "---\n" + cmHead + "data:\n  a: x\n  a: y\n",
			doc:  2, path: "", msg: `line 12: key "a" already set in map`,
		},
		{
			name: "duplicate JSON key",
			in:   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"a":"x","a":"y"}}`,
			doc:  1, path: "data.a", msg: "duplicate field",
		},
		{
			name: "YAML syntax error with its line in the file",
			in:   cmHead + "---\n" + cmHead + "data:\n  a: b: c\n",
			doc:  2, path: "", msg: "line 11: mapping values are not allowed in this context",
		},
		{
			name: "tab indentation",
			in:   cmHead + "data:\n\ta: b\n",
			doc:  1, path: "", msg: "line 6: found character that cannot start any token",
		},
		{
			name: "document not a mapping",
			in:   cmHead + "---\n- a\n- b\n",
			doc:  2, path: "", msg: "a document must be an object (a YAML mapping), not a list",
		},
		{
			name: "content after separator",
			in:   cmHead + "--- {a: b}\n",
			doc:  0, path: "", msg: `line 5: content after "---" is not supported`,
		},
		{
			name: "bad List item",
			in:   cmHead + "---\napiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(cmHead, "\n", "\n  ") + "  foo: 1\n",
			doc:  2, path: "items[0].metadata.foo", msg: "unknown field",
		},
		{
			name: "List item of unknown kind names both",
			in:   "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Frobnicator}\n",
			doc:  1, path: "items[0].kind",
			wantErr: `x.yaml: document 1: items[0].kind: kind "Frobnicator" (apiVersion "v1"): unknown kind`,
		},
		{
			name: "internal kind",
			in:   cmHead + "---\napiVersion: shoal.dev/v1\nkind: PlacementGuard\nmetadata:\n  name: n1\n",
			doc:  2, path: "kind",
			wantErr: `x.yaml: document 2: kind "PlacementGuard" is internal to Shoal`,
		},
		{
			name: "internal kind in a List, whatever its apiVersion",
			in:   "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: PlacementGuard, metadata: {name: n1}}\n",
			doc:  1, path: "items[0].kind", msg: `kind "PlacementGuard" is internal to Shoal`,
		},
		{
			name: "pod spec field of the wrong type inside an inlined struct",
			in:   "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: i\n    readinessProbe:\n      tcpSocket: {port: 1}\n      exec: {command: [x, 7]}\n",
			doc:  1, path: "spec.containers[0].readinessProbe.exec.command[1]", msg: "must be a string, not a number",
		},
		{
			name: "quantity of the wrong type",
			in:   "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: i\n    resources: {limits: {memory: [1]}}\n",
			doc:  1, path: "spec.containers[0].resources.limits.memory", msg: "must be a quantity",
		},
		{
			name: "fractional port",
			in:   "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: i\n    livenessProbe: {tcpSocket: {port: 80.5}}\n",
			doc:  1, path: "spec.containers[0].livenessProbe.tcpSocket.port", msg: "80.5: must be an integer or a string",
		},
		{
			name: "List in a List",
			in:   "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List}\n",
			doc:  1, path: "items[0].kind", msg: "a List cannot hold a List",
		},
		{
			name: "List field not supported",
			in:   "apiVersion: v1\nkind: List\nextra: 1\nitems: []\n",
			doc:  1, path: "extra", msg: "not supported",
		},
		{
			name: "same object twice",
			in:   cmHead + "---\n" + cmHead + "  namespace: default\n",
			doc:  2, path: "metadata.name", msg: `ConfigMap "default/cm" is also defined in x.yaml document 1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode(Source{Name: "x.yaml", Data: []byte(tt.in)})
			if err == nil {
				t.Fatalf("Decode succeeded with %v; want an error", objs)
			}
			t.Log(err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.File != "x.yaml" || e.Doc != tt.doc || e.Path != tt.path || !strings.HasPrefix(e.Msg, tt.msg) {
				t.Fatalf("error = %#v\nwant File x.yaml, Doc %d, Path %q, Msg starting %q", e, tt.doc, tt.path, tt.msg)
			}
			if tt.wantErr != "" && err.Error() != tt.wantErr {
				t.Fatalf("Error() = %q\nwant      %q", err.Error(), tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has more than one line: %q", err.Error())
			}
		})
	}
}

func TestDecodeAcceptsZeroUnsupported(t *testing.T) {
	// Zero values ask for nothing, so they are not refused.
	in := cmHead + "  generateName: \"\"\n  finalizers: []\ndata: null\n"
	objs, err := Decode(Source{Name: "z.yaml", Data: []byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || len(objs[0].Spec) != 0 {
		t.Fatalf("objs = %v; want one ConfigMap with no spec fields", objs)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"all parts", Error{File: "a.yaml", Doc: 2, Path: "data.x", Msg: "unknown field"}, "a.yaml: document 2: data.x: unknown field"},
		{"no document", Error{File: "a.yaml", Msg: "line 3: bad"}, "a.yaml: line 3: bad"},
		{"no file", Error{Path: "metadata.name", Msg: "required"}, "metadata.name: required"},
		{"message names the path", Error{File: "-", Doc: 1, Path: "kind", Msg: `kind "X" (apiVersion "v1"): unknown kind`}, `-: document 1: kind "X" (apiVersion "v1"): unknown kind`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, file := range goodFiles {
		t.Run(file, func(t *testing.T) {
			objs, err := Decode(readTestdata(t, file))
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range objs {
				// What the server would store and `get -o yaml` print.
				stored := proto.Clone(o).(*shoalpb.Object)
				stored.Uid = "uid-1"
				stored.ResourceVersion = 99
				stored.CreateRevision = 3
				stored.Generation = 2
				stored.CreateTimeUnixNano = 1_700_000_000_000_000_000
				y, err := object.ToYAML(stored)
				if err != nil {
					t.Fatal(err)
				}
				again, err := Decode(Source{Name: "again.yaml", Data: y})
				if err != nil {
					t.Fatalf("object %d: decode of\n%s\nfailed: %v", i, y, err)
				}
				want := proto.Clone(o).(*shoalpb.Object)
				want.ResourceVersion = 99 // kept as the compare-and-swap precondition
				if len(again) != 1 || !proto.Equal(again[0], want) {
					t.Fatalf("object %d: round trip through\n%s\ngave %v\nwant %v", i, y, again, want)
				}
			}
		})
	}
}

func TestEveryKindHasADecoder(t *testing.T) {
	for _, k := range object.Kinds() {
		if _, ok := decoders[k.Name]; !ok {
			t.Errorf("kind %s is registered in package object but has no decoder", k.Name)
		}
	}
	for name := range decoders {
		if _, ok := object.KindFor(name); !ok {
			t.Errorf("decoder %s has no kind in package object", name)
		}
	}
}
