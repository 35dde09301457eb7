package deployment

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// TemplateHash names a pod template: FNV-32a of the template's JSON (and of
// collisionCount, when set, as Kubernetes does), written as 10 characters of
// Kubernetes' safe alphabet "bcdfghjklmnpqrstvwxz2456789". The same template
// always gives the same hash, on every node and across releases, because
// encoding/json writes struct fields in declaration order and map keys
// sorted. It is the pod-template-hash label and the suffix of the
// ReplicaSet's name.
//
// The 32-bit value is printed as 10 zero-padded decimal digits and each digit
// mapped through rand.SafeEncodeString, so the hash always has 10 characters
// (Kubernetes does not pad, so its hashes are sometimes shorter).
func TemplateHash(tmpl *corev1.PodTemplateSpec, collisionCount *int32) string {
	b, err := json.Marshal(tmpl)
	if err != nil {
		// A PodTemplateSpec holds only strings, numbers, maps, slices and
		// types with their own marshalers that cannot fail.
		panic(fmt.Sprintf("deployment: marshal pod template: %v", err))
	}
	h := fnv.New32a()
	h.Write(b)
	if collisionCount != nil {
		var buf [4]byte
		binary.LittleEndian.PutUint32(buf[:], uint32(*collisionCount))
		h.Write(buf[:])
	}
	return rand.SafeEncodeString(fmt.Sprintf("%010d", h.Sum32()))
}
