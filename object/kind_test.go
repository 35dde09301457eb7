package object

import (
	"testing"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string
		wantOK bool
	}{
		{"short configmap", "cm", "ConfigMap", true},
		{"singular", "configmap", "ConfigMap", true},
		{"plural", "configmaps", "ConfigMap", true},
		{"kind name", "ConfigMap", "ConfigMap", true},
		{"upper case", "CONFIGMAPS", "ConfigMap", true},
		{"short namespace", "ns", "Namespace", true},
		{"namespace singular", "namespace", "Namespace", true},
		{"namespace plural", "namespaces", "Namespace", true},
		{"namespace kind", "Namespace", "Namespace", true},
		{"pod short", "po", "Pod", true},
		{"pods", "pods", "Pod", true},
		{"replicaset short", "rs", "ReplicaSet", true},
		{"deployment short", "deploy", "Deployment", true},
		{"deployments", "Deployments", "Deployment", true},
		{"node short", "no", "Node", true},
		{"event short", "ev", "Event", true},
		{"internal kinds resolve too", "placementguards", "PlacementGuard", true},
		{"unknown", "frobnicator", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := Lookup(tt.in)
			if ok != tt.wantOK || k.Name != tt.want {
				t.Fatalf("Lookup(%q) = %q, %v; want %q, %v", tt.in, k.Name, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestKindFor(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantOK     bool
		apiVersion string
		namespaced bool
		internal   bool
	}{
		{"configmap", "ConfigMap", true, "v1", true, false},
		{"namespace", "Namespace", true, "v1", false, false},
		{"pod", "Pod", true, "v1", true, false},
		{"replicaset", "ReplicaSet", true, "apps/v1", true, false},
		{"deployment", "Deployment", true, "apps/v1", true, false},
		{"node", "Node", true, "v1", false, false},
		{"event", "Event", true, "v1", true, false},
		{"placement guard", "PlacementGuard", true, "shoal.dev/v1", false, true},
		{"lower case is not a kind name", "configmap", false, "", false, false},
		{"short name is not a kind name", "cm", false, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := KindFor(tt.in)
			if ok != tt.wantOK || k.APIVersion != tt.apiVersion || k.Namespaced != tt.namespaced || k.Internal != tt.internal {
				t.Fatalf("KindFor(%q) = %+v, %v", tt.in, k, ok)
			}
		})
	}
}

func TestKindsIsACopy(t *testing.T) {
	ks := Kinds()
	if len(ks) < 2 {
		t.Fatalf("Kinds() = %v, want at least Namespace and ConfigMap", ks)
	}
	for i := range ks {
		ks[i].Name = "Changed"
		for j := range ks[i].ShortNames {
			ks[i].ShortNames[j] = "changed"
		}
	}
	if k, ok := Lookup("cm"); !ok || k.Name != "ConfigMap" || k.ShortNames[0] != "cm" {
		t.Fatalf("registry changed through Kinds(): %+v", k)
	}
}

func TestInternalKinds(t *testing.T) {
	var internal []string
	for _, k := range Kinds() {
		if k.Internal {
			internal = append(internal, k.Name)
			if len(k.ShortNames) > 0 {
				t.Errorf("internal kind %s has short names %v", k.Name, k.ShortNames)
			}
		}
	}
	if len(internal) != 1 || internal[0] != PlacementGuardKind {
		t.Fatalf("internal kinds = %v, want [PlacementGuard]", internal)
	}
}

func TestKindAliasesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, k := range Kinds() {
		for _, a := range append([]string{k.Name, k.Plural, k.Singular}, k.ShortNames...) {
			if a == "" {
				t.Errorf("kind %s has an empty name", k.Name)
			}
			if other, ok := seen[a]; ok && other != k.Name {
				t.Errorf("%q names both %s and %s", a, other, k.Name)
			}
			seen[a] = k.Name
		}
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name                     string
		kind, namespace, objName string
		want                     string
	}{
		{"namespaced", "ConfigMap", "default", "foo", "ConfigMap/default/foo"},
		{"cluster-scoped", "Namespace", "", "foo", "Namespace//foo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(tt.kind, tt.namespace, tt.objName); got != tt.want {
				t.Fatalf("Key = %q, want %q", got, tt.want)
			}
			o := &shoalpb.Object{Kind: tt.kind, Namespace: tt.namespace, Name: tt.objName}
			if got := KeyOf(o); got != tt.want {
				t.Fatalf("KeyOf = %q, want %q", got, tt.want)
			}
		})
	}
}
