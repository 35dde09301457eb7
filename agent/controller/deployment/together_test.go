package deployment

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/agent/controller"
	"github.com/shoal-dev/shoal/agent/controller/controllertest"
	"github.com/shoal-dev/shoal/agent/controller/replicaset"
)

// TestWithReplicaSetController runs the deployment and replicaset controllers
// together on one store, with a stand-in scheduler and kubelet, through
// create, template change and scale, and checks where they settle.
func TestWithReplicaSetController(t *testing.T) {
	d := newDeployment(ptr[int32](3), historyLimit(0))
	store := controllertest.NewStore(t, now, d)
	env := controllertest.Env(now)

	settleAll := func(t *testing.T) {
		t.Helper()
		for round := 1; ; round++ {
			if round > 20 {
				t.Fatal("no fixed point after 20 rounds")
			}
			n := 0
			apply := func(w []controller.Write) { n += len(w); store.Apply(w) }
			apply(Reconcile(env, store.Deployment(ns, "web"), store.ReplicaSets(), store.Pods()))
			for _, rs := range store.ReplicaSets() {
				apply(replicaset.Reconcile(env, rs, store.Pods()))
			}
			// Scheduler: bind pending pods. Kubelet: run bound ones, ready
			// for an hour (env.Now does not move in this test).
			var binds, runs []controller.Write
			for _, p := range store.Pods() {
				switch {
				case p.Spec.NodeName == "":
					p.Spec.NodeName = "n1"
					binds = append(binds, controller.Write{Action: controller.Update, Kind: controller.KindPod, Object: p, Reason: "Scheduled"})
				case p.Status.Phase == corev1.PodPending:
					p.Status.Phase = corev1.PodRunning
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}}
					runs = append(runs, controller.Write{Action: controller.UpdateStatus, Kind: controller.KindPod, Object: p, Reason: "Started"})
				}
			}
			apply(binds)
			apply(runs)
			if n == 0 {
				return
			}
		}
	}
	check := func(t *testing.T, img string, replicas int32) {
		t.Helper()
		sets := store.ReplicaSets()
		if len(sets) != 1 || sets[0].Name != "web-"+hashOf(img) {
			var names []string
			for _, rs := range sets {
				names = append(names, rs.Name)
			}
			t.Fatalf("sets = %q, want only web-%s (history limit 0)", names, hashOf(img))
		}
		pods := store.Pods()
		if int32(len(pods)) != replicas {
			t.Fatalf("%d pods, want %d", len(pods), replicas)
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image != img || !controller.IsControlledBy(p, sets[0].UID) {
				t.Errorf("pod %s runs %s, controlled by %v; want %s of %s", p.Name, p.Spec.Containers[0].Image, p.OwnerReferences, img, sets[0].Name)
			}
		}
		got := store.Deployment(ns, "web")
		st := got.Status
		if st.ObservedGeneration != got.Generation || st.Replicas != replicas || st.UpdatedReplicas != replicas ||
			st.AvailableReplicas != replicas || st.UnavailableReplicas != 0 {
			t.Errorf("status = %+v, want %d replicas all updated and available at generation %d", st, replicas, got.Generation)
		}
		if len(st.Conditions) != 2 {
			t.Errorf("conditions = %+v, want Available and Progressing", st.Conditions)
		}
		for _, c := range st.Conditions {
			if c.Status != corev1.ConditionTrue ||
				(c.Type == appsv1.DeploymentProgressing && c.Reason != ReasonComplete) {
				t.Errorf("condition %+v, want Available and NewReplicaSetAvailable", c)
			}
		}
	}
	update := func(change func(*appsv1.Deployment)) {
		d := store.Deployment(ns, "web")
		change(d)
		store.Apply([]controller.Write{{Action: controller.Update, Kind: controller.KindDeployment, Object: d, Reason: "User"}})
	}

	t.Run("create", func(t *testing.T) {
		settleAll(t)
		check(t, "img:1", 3)
	})
	t.Run("template change", func(t *testing.T) {
		update(func(d *appsv1.Deployment) { d.Spec.Template = template("img:2") })
		settleAll(t)
		check(t, "img:2", 3)
		if rev := store.ReplicaSets()[0].Annotations[RevisionAnnotation]; rev != "2" {
			t.Errorf("revision %q, want 2", rev)
		}
	})
	t.Run("scale up", func(t *testing.T) {
		update(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr[int32](5) })
		settleAll(t)
		check(t, "img:2", 5)
	})
	t.Run("scale down", func(t *testing.T) {
		update(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr[int32](2) })
		settleAll(t)
		check(t, "img:2", 2)
	})
}
