package replicaset

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/controllertest"
)

// FuzzReconcile builds a namespace of pods from the fuzzer's bytes (owned,
// orphaned, foreign, relabeled; every phase; ready or not; being deleted)
// and checks what must always hold: foreign pods are never written, the
// writes apply as compare-and-swaps (one per object), the result has exactly
// spec.replicas active owned pods, and reconciling it again writes nothing.
func FuzzReconcile(f *testing.F) {
	f.Add(uint8(3), []byte{})
	f.Add(uint8(0), []byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add(uint8(2), []byte{0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9})
	f.Add(uint8(1), []byte{0xff, 0xfe, 0x80, 0x7f, 0x01})
	f.Fuzz(func(t *testing.T, replicas uint8, data []byte) {
		if len(data) > 64 {
			data = data[:64]
		}
		rs := newRS(ptr(int32(replicas % 40)))
		var pods []*corev1.Pod
		for i, b := range data {
			p := pod(fmt.Sprintf("p%d", i), created(time.Duration(b)*time.Minute))
			switch b & 3 {
			case 1:
				p.OwnerReferences = nil
			case 2:
				p.OwnerReferences = []metav1.OwnerReference{ref("web", "uid-other")}
			}
			if b&4 != 0 {
				p.Labels = map[string]string{"app": "db"}
			}
			p.Status.Phase = []corev1.PodPhase{corev1.PodRunning, corev1.PodPending, corev1.PodFailed, corev1.PodSucceeded}[(b>>3)&3]
			if b&0x20 != 0 {
				readyFor(time.Duration(b) * time.Second)(p)
			}
			if b&0xc0 == 0xc0 {
				deleting()(p)
			}
			if b&0x40 != 0 && b&0x80 == 0 {
				unscheduled()(p)
			}
			pods = append(pods, p)
		}

		env := controllertest.Env(now)
		writes := Reconcile(env, rs, pods)
		foreign := map[string]bool{}
		for _, p := range pods {
			if ref := metav1.GetControllerOf(p); ref != nil && ref.UID != rs.UID {
				foreign[p.Name] = true
			}
		}
		for _, w := range writes {
			if w.Kind == controller.KindPod && foreign[w.Object.GetName()] {
				t.Fatalf("wrote a foreign pod: %v", w)
			}
		}
		store := controllertest.NewStore(t, now, append(objects(pods), rs)...)
		store.Apply(writes)

		active := 0
		for _, p := range store.Pods() {
			if controller.IsControlledBy(p, types.UID("uid-web")) && controller.IsPodActive(p) {
				active++
			}
		}
		if active != int(*rs.Spec.Replicas) {
			t.Fatalf("%d active owned pods after applying, want %d; writes %q", active, *rs.Spec.Replicas, controllertest.Summary(writes))
		}
		if again := Reconcile(env, store.ReplicaSet(ns, "web"), store.Pods()); len(again) != 0 {
			t.Fatalf("second reconcile writes %q", controllertest.Summary(again))
		}
	})
}
