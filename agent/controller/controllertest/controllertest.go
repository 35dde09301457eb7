// Package controllertest helps test controllers: a deterministic Env, and a
// Store that applies a reconcile's writes the way the runner and the
// replicated store do (compare-and-swap on resourceVersion, spec and status
// written separately), failing the test on any write the real store would
// refuse. It is for tests only.
package controllertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/agent/controller"
)

// Env is an Env at now whose NewName hands out prefix+"00001",
// prefix+"00002", ... (5 characters of [a-z0-9], as the real one).
func Env(now time.Time) controller.Env {
	n := 0
	return controller.Env{Now: now, NewName: func(prefix string) string {
		n++
		return fmt.Sprintf("%s%05d", prefix, n)
	}}
}

// Summary is a one-line form of each write, for comparing in tests:
// "Create Pod ns/web-00001 (SuccessfulCreate)".
func Summary(writes []controller.Write) []string {
	out := make([]string, len(writes))
	for i, w := range writes {
		out[i] = w.String()
	}
	return out
}

// Frozen records objs as JSON; the returned check fails t if any changed
// since: a reconcile must not modify its inputs.
func Frozen(t testing.TB, objs ...any) func() {
	t.Helper()
	before := mustJSON(t, objs)
	return func() {
		t.Helper()
		if after := mustJSON(t, objs); !bytes.Equal(before, after) {
			t.Errorf("reconcile modified its inputs:\nbefore %s\nafter  %s", before, after)
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// Store holds objects by kind/namespace/name and applies writes to them.
type Store struct {
	t    testing.TB
	Now  time.Time // creationTimestamp of created objects
	rv   int
	objs map[string]metav1.Object
}

// NewStore returns a store holding copies of objs. Objects without a
// resourceVersion get one, objects without a uid get "uid-<name>".
func NewStore(t testing.TB, now time.Time, objs ...metav1.Object) *Store {
	s := &Store{t: t, Now: now, objs: map[string]metav1.Object{}}
	for _, o := range objs {
		c := clone(o)
		if c.GetResourceVersion() == "" {
			c.SetResourceVersion(s.nextRV())
		}
		if c.GetUID() == "" {
			c.SetUID(types.UID("uid-" + c.GetName()))
		}
		s.objs[key(kindOf(c), c.GetNamespace(), c.GetName())] = c
	}
	return s
}

func (s *Store) nextRV() string {
	s.rv++
	return strconv.Itoa(s.rv)
}

// Apply applies writes in order as compare-and-swaps, and fails the test on
// the first one the real store would refuse: a stale or missing
// resourceVersion, a Create of a taken name or with a uid, an Update that
// changes status, an UpdateStatus that changes anything else, two writes to
// one object.
func (s *Store) Apply(writes []controller.Write) {
	s.t.Helper()
	for _, w := range writes {
		o := w.Object
		if got := kindOf(o); got != w.Kind {
			s.t.Fatalf("%v: Kind says %s, object is a %s", w, w.Kind, got)
		}
		k := key(w.Kind, o.GetNamespace(), o.GetName())
		cur, exists := s.objs[k]
		if w.Action == controller.Create {
			if exists {
				s.t.Fatalf("%v: already exists", w)
			}
			if o.GetUID() != "" || o.GetResourceVersion() != "" {
				s.t.Fatalf("%v: a created object must carry no uid or resourceVersion", w)
			}
			c := clone(o)
			c.SetUID(types.UID("uid-" + c.GetName()))
			c.SetResourceVersion(s.nextRV())
			c.SetCreationTimestamp(metav1.NewTime(s.Now))
			c.SetGeneration(1)
			s.objs[k] = c
			continue
		}
		if !exists {
			s.t.Fatalf("%v: not found", w)
		}
		if o.GetResourceVersion() != cur.GetResourceVersion() {
			s.t.Fatalf("%v: conflict: written at resourceVersion %q, stored at %q", w, o.GetResourceVersion(), cur.GetResourceVersion())
		}
		curParts, newParts := parts(s.t, cur), parts(s.t, o)
		switch w.Action {
		case controller.Delete:
			delete(s.objs, k)
			continue
		case controller.Update:
			if !bytes.Equal(curParts["status"], newParts["status"]) {
				s.t.Fatalf("%v: an Update changes the status:\nstored  %s\nwritten %s", w, curParts["status"], newParts["status"])
			}
		case controller.UpdateStatus:
			for f := range mergeKeys(curParts, newParts) {
				if f != "status" && !bytes.Equal(curParts[f], newParts[f]) {
					s.t.Fatalf("%v: an UpdateStatus changes %s:\nstored  %s\nwritten %s", w, f, curParts[f], newParts[f])
				}
			}
		default:
			s.t.Fatalf("%v: bad action", w)
		}
		c := clone(o)
		if !bytes.Equal(curParts["spec"], newParts["spec"]) {
			c.SetGeneration(cur.GetGeneration() + 1)
		}
		c.SetResourceVersion(s.nextRV())
		s.objs[k] = c
	}
}

func mergeKeys(a, b map[string]json.RawMessage) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// parts splits an object's JSON into its top-level fields.
func parts(t testing.TB, o metav1.Object) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(mustJSON(t, o), &m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return m
}

// Pods returns copies of the stored pods, by name.
func (s *Store) Pods() []*corev1.Pod { return list[*corev1.Pod](s, controller.KindPod) }

// ReplicaSets returns copies of the stored ReplicaSets, by name.
func (s *Store) ReplicaSets() []*appsv1.ReplicaSet {
	return list[*appsv1.ReplicaSet](s, controller.KindReplicaSet)
}

// ReplicaSet returns a copy of the stored ReplicaSet, or fails the test.
func (s *Store) ReplicaSet(namespace, name string) *appsv1.ReplicaSet {
	return get[*appsv1.ReplicaSet](s, controller.KindReplicaSet, namespace, name)
}

// Deployment returns a copy of the stored Deployment, or fails the test.
func (s *Store) Deployment(namespace, name string) *appsv1.Deployment {
	return get[*appsv1.Deployment](s, controller.KindDeployment, namespace, name)
}

// Node returns a copy of the stored Node, or fails the test.
func (s *Store) Node(name string) *corev1.Node {
	return get[*corev1.Node](s, controller.KindNode, "", name)
}

func list[T metav1.Object](s *Store, kind string) []T {
	var keys []string
	for k := range s.objs {
		if strings.HasPrefix(k, kind+"/") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = clone(s.objs[k]).(T)
	}
	return out
}

func get[T metav1.Object](s *Store, kind, namespace, name string) T {
	s.t.Helper()
	o, ok := s.objs[key(kind, namespace, name)]
	if !ok {
		s.t.Fatalf("%s %s/%s not stored", kind, namespace, name)
	}
	return clone(o).(T)
}

func key(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

func clone(o metav1.Object) metav1.Object {
	return o.(runtime.Object).DeepCopyObject().(metav1.Object)
}

func kindOf(o metav1.Object) string {
	switch o.(type) {
	case *corev1.Pod:
		return controller.KindPod
	case *appsv1.ReplicaSet:
		return controller.KindReplicaSet
	case *appsv1.Deployment:
		return controller.KindDeployment
	case *corev1.Node:
		return controller.KindNode
	}
	return fmt.Sprintf("%T", o)
}
