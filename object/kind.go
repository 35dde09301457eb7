package object

import (
	"strings"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

// Kind describes one kind of object Shoal serves, with the names kubectl
// users type for it.
type Kind struct {
	Name       string   // "ConfigMap": the kind field of a manifest
	APIVersion string   // "v1", "apps/v1"
	Plural     string   // "configmaps"
	Singular   string   // "configmap"
	ShortNames []string // "cm"
	Namespaced bool     // false for cluster-scoped kinds such as Namespace
	// Internal kinds are written by Shoal itself (the scheduler's
	// PlacementGuard), never by users: the CLI does not offer them and a
	// manifest may not hold them, but the API validates and serves them like
	// any other kind.
	Internal bool
}

// kinds is the registry. A new kind is one entry here plus a decoder entry
// in package manifest.
var kinds = []Kind{
	{Name: "Namespace", APIVersion: "v1", Plural: "namespaces", Singular: "namespace", ShortNames: []string{"ns"}},
	{Name: "ConfigMap", APIVersion: "v1", Plural: "configmaps", Singular: "configmap", ShortNames: []string{"cm"}, Namespaced: true},
	{Name: "Pod", APIVersion: "v1", Plural: "pods", Singular: "pod", ShortNames: []string{"po"}, Namespaced: true},
	{Name: "ReplicaSet", APIVersion: "apps/v1", Plural: "replicasets", Singular: "replicaset", ShortNames: []string{"rs"}, Namespaced: true},
	{Name: "Deployment", APIVersion: "apps/v1", Plural: "deployments", Singular: "deployment", ShortNames: []string{"deploy"}, Namespaced: true},
	{Name: "Service", APIVersion: "v1", Plural: "services", Singular: "service", ShortNames: []string{"svc"}, Namespaced: true},
	{Name: "Node", APIVersion: "v1", Plural: "nodes", Singular: "node", ShortNames: []string{"no"}},
	{Name: "Event", APIVersion: "v1", Plural: "events", Singular: "event", ShortNames: []string{"ev"}, Namespaced: true},
	{Name: "HorizontalPodAutoscaler", APIVersion: "autoscaling/v2", Plural: "horizontalpodautoscalers", Singular: "horizontalpodautoscaler", ShortNames: []string{"hpa"}, Namespaced: true},
	{Name: PlacementGuardKind, APIVersion: PlacementGuardAPIVersion, Plural: "placementguards", Singular: "placementguard", Internal: true},
}

// byAlias maps every lower-cased name a user may type to an index in kinds.
var byAlias = func() map[string]int {
	m := make(map[string]int)
	for i, k := range kinds {
		for _, a := range append([]string{k.Name, k.Plural, k.Singular}, k.ShortNames...) {
			a = strings.ToLower(a)
			if j, dup := m[a]; dup && j != i {
				panic("object: name " + a + " registered for both " + kinds[j].Name + " and " + k.Name)
			}
			m[a] = i
		}
	}
	return m
}()

// Lookup resolves what a user typed on the command line to a registered
// kind: the kind name, plural, singular or a short name, in any case ("cm",
// "configmap", "configmaps", "ConfigMap" all give ConfigMap).
func Lookup(s string) (Kind, bool) {
	i, ok := byAlias[strings.ToLower(s)]
	if !ok {
		return Kind{}, false
	}
	return kinds[i].clone(), true
}

// KindFor returns the registered kind whose Name is exactly name, as the kind
// field of a manifest or a stored Object spells it ("ConfigMap", not
// "configmap").
func KindFor(name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k.clone(), true
		}
	}
	return Kind{}, false
}

// Kinds returns every registered kind in registration order, internal kinds
// included (a user-facing listing skips those with Internal set). The result
// is a copy the caller may change.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	for i, k := range kinds {
		out[i] = k.clone()
	}
	return out
}

func (k Kind) clone() Kind {
	k.ShortNames = append([]string(nil), k.ShortNames...)
	return k
}

// Key is the store key of an object: "ConfigMap/default/foo". Cluster-scoped
// objects have an empty namespace, so a Namespace is "Namespace//foo". Kind
// names, namespaces and names never contain '/', so a key splits back into
// its three parts unambiguously, and keys sort by kind, then namespace.
func Key(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}

// KeyOf is Key of o's kind, namespace and name.
func KeyOf(o *shoalpb.Object) string {
	return Key(o.GetKind(), o.GetNamespace(), o.GetName())
}
