package object

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

var benchPod = &shoalpb.Object{Kind: "Pod", ApiVersion: "v1", Namespace: "default", Name: "place-r1-0001", Uid: "0b7f1c2e-8f7a-4a8e-9d7e-1f2b3c4d5e6f",
	ResourceVersion: 1234, Generation: 1, CreateTimeUnixNano: 1_763_900_000_123_456_789,
	Spec:   []byte(`{"spec":{"containers":[{"command":["shoal-testapp","sleep"],"image":"shoal-testapp","name":"app","resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}],"nodeName":"n042"}}`),
	Status: []byte(`{"conditions":[{"lastProbeTime":null,"lastTransitionTime":"2026-11-23T12:00:00Z","status":"True","type":"PodScheduled"},{"lastProbeTime":null,"lastTransitionTime":"2026-11-23T12:00:01Z","status":"True","type":"Ready"}],"containerStatuses":[{"containerID":"sim://abc","image":"shoal-testapp","imageID":"","lastState":{},"name":"app","ready":true,"restartCount":0,"started":true,"state":{"running":{"startedAt":"2026-11-23T12:00:01Z"}}}],"hostIP":"127.0.150.43","phase":"Running","podIP":"127.0.150.43","startTime":"2026-11-23T12:00:00Z"}`)}

func BenchmarkDecodePod(b *testing.B) {
	for b.Loop() {
		var p corev1.Pod
		if err := Decode(benchPod, &p); err != nil {
			b.Fatal(err)
		}
	}
}
