package hpa

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/controllertest"
)

// FuzzReconcile builds the target's pods from the fuzzer's bytes (any
// usage; Running, Pending or Failed; Ready, not Ready or young; with or
// without a sample) under random bounds, target and behavior, and checks
// what must always hold: the inputs are not modified, each object is
// written at most once and at the revision it was read at, the target is
// written exactly when the decision changes its replicas, and the decision
// stays within minReplicas and maxReplicas (or is the current replicas when
// scaling is disabled at zero).
func FuzzReconcile(f *testing.F) {
	f.Add(uint8(1), uint8(0), uint8(3), uint8(50), false, []byte{40, 0x21, 0x80})
	f.Add(uint8(4), uint8(1), uint8(9), uint8(10), true, []byte{0, 0, 0, 0})
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), false, []byte{})
	f.Add(uint8(30), uint8(2), uint8(4), uint8(200), true, []byte{0xff, 0x7f, 0x3f, 0x1f, 0x0f})
	f.Fuzz(func(t *testing.T, replicas, minR, span, target uint8, withBehavior bool, data []byte) {
		if len(data) > 32 {
			data = data[:32]
		}
		lo := int32(1 + minR%5)
		hi := lo + int32(span%10)
		opts := []hpaOpt{bounds(lo, hi), metrics(cpuUtil(int32(1 + target%250)))}
		if withBehavior {
			opts = append(opts, behavior(nil, rules(ptr(int32(0)), "")))
		}
		h := newHPA(opts...)
		current := int32(replicas % 20)
		d := deployment(current)
		var pods []*corev1.Pod
		var samples []sample
		for i, b := range data {
			name := fmt.Sprintf("p%d", i)
			var o []podOpt
			switch b & 3 {
			case 1:
				o = append(o, phase(corev1.PodPending))
			case 2:
				o = append(o, readySince(corev1.ConditionFalse, time.Duration(b)*time.Second))
			case 3:
				o = append(o, startedAgo(time.Minute), readySince(corev1.ConditionTrue, time.Duration(b%64)*time.Second))
			}
			if b&0x80 != 0 {
				o = append(o, phase(corev1.PodFailed))
			}
			pods = append(pods, pod(name, o...))
			if b&0x40 == 0 {
				samples = append(samples, sample{pod: name, cpuMilli: int64(b&0x3c) * 10})
			}
		}
		check := controllertest.Frozen(t, h, d, pods)
		res := Reconcile(DefaultConfig(), controllertest.Env(now), Input{HPA: h, Target: targetOf(d), Pods: pods, Usage: snapshot(now, samples...)})
		check()

		seen := map[string]bool{}
		scaled := int32(-1)
		for _, w := range res.Writes {
			if seen[w.Kind] {
				t.Fatalf("two writes of a %s: %q", w.Kind, controllertest.Summary(res.Writes))
			}
			seen[w.Kind] = true
			switch w.Kind {
			case Kind:
				if w.Action != controller.UpdateStatus || w.Object.GetResourceVersion() != h.ResourceVersion {
					t.Fatalf("HPA write %v", w)
				}
			default:
				scaled = scaledTo(t, res)
			}
		}
		switch {
		case current == 0:
			if res.Desired != 0 || scaled != -1 {
				t.Fatalf("target at zero: desired %d, scaled to %d", res.Desired, scaled)
			}
		case res.Desired < lo || res.Desired > hi:
			t.Fatalf("desired %d outside [%d, %d] (current %d)", res.Desired, lo, hi, current)
		case (res.Desired != current) != (scaled != -1) || (scaled != -1 && scaled != res.Desired):
			t.Fatalf("desired %d from %d, but scaled to %d", res.Desired, current, scaled)
		}
	})
}
