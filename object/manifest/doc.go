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
// Decode and ValidateObject are pure: they take bytes and objects and return
// objects and errors. Only DecodeFiles and DecodeReader touch the file system
// or a reader.
//
// A new kind is an entry in object's registry plus a decoder entry in
// kinds.go: the typed struct to decode into strictly, the JSON paths Shoal
// supports, and the kind's own validation.
package manifest
