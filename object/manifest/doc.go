// Package manifest decodes the Kubernetes manifests users bring (`shoal
// apply -f`) into stored Objects, and re-validates Objects that arrive over
// gRPC with the same rules.
//
// Decoding is strict: YAML with duplicate keys, fields Kubernetes does not
// know, and fields Kubernetes knows but Shoal does not implement are all
// refused with their path, never silently dropped. Every failure is one
// *Error naming the file, the document and the field path, for example
//
//	cm.yaml: document 2: metadata.generateName: not supported
//
// Values are checked as Kubernetes would check them (quantities parse,
// requests fit limits, probes have one handler, selectors match their
// templates, ...), each failure naming its field path.
//
// Internal kinds (object.Kind.Internal, such as the scheduler's
// PlacementGuard) are refused in manifests but accepted by ValidateObject:
// Shoal writes them through the same API.
//
// Decode and ValidateObject are pure: they take bytes and objects and return
// objects and errors. Only DecodeFiles and DecodeReader touch the file system
// or a reader.
//
// A new kind is an entry in object's registry plus a decoder entry in
// kinds.go: the typed struct to decode into strictly, the JSON paths Shoal
// supports (pod.go and workloads.go hold those of the workload kinds), and
// the kind's own validation.
package manifest
