// Package object holds the helpers every Shoal package shares about stored
// objects: the registry of kinds Shoal serves, object keys, rendering an
// Object as Kubernetes JSON or YAML, moving between Objects and typed
// Kubernetes structs (Decode, FromTyped) for the controllers, the scheduler
// and the kubelet duties, the internal PlacementGuard type, label selectors
// and kubectl-style ages.
//
// It is a leaf package: it imports only the generated API (proto/shoalpb) and
// Kubernetes' apimachinery helpers, never another Shoal package, and it does
// no IO. Decoding user manifests lives in the manifest subpackage.
package object
