package object

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/proto/shoalpb"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// createdAt is a creation time that survives rendering, which keeps seconds.
var createdAt = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)

func typedPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop", UID: "u-1", ResourceVersion: "42", Generation: 3,
			CreationTimestamp: metav1.NewTime(createdAt),
			Labels:            map[string]string{"app": "web"},
			Annotations:       map[string]string{"note": "x"},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u-0", Controller: ptr(true)},
				{APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "u-2", Controller: ptr(false)},
			},
		},
		Spec: corev1.PodSpec{
			NodeName:     "n1",
			NodeSelector: map[string]string{"disk": ""}, // an empty value still selects
			Containers: []corev1.Container{{
				Name:  "main",
				Image: "app:1",
				Args:  []string{""}, // list elements are kept
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")},
				}},
			}},
		},
	}
}

func TestFromTyped(t *testing.T) {
	running := typedPod()
	running.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		PodIP: "10.0.0.5",
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(createdAt)},
		},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true, RestartCount: 0}},
	}
	tests := []struct {
		name       string
		kind       string
		in         any
		spec       string
		status     string
		wantErr    string
		checkIdent bool
	}{
		{
			name: "pod: empty structs left out; map values and list elements kept",
			kind: "Pod", in: typedPod(), checkIdent: true,
			spec: `{"spec":{"containers":[{"args":[""],"image":"app:1","name":"main",` +
				`"readinessProbe":{"tcpSocket":{"port":"http"}},"resources":{"requests":{"cpu":"250m"}}}],` +
				`"nodeName":"n1","nodeSelector":{"disk":""}}}`,
		},
		{
			name: "pod with status",
			kind: "Pod", in: running,
			spec: `{"spec":{"containers":[{"args":[""],"image":"app:1","name":"main",` +
				`"readinessProbe":{"tcpSocket":{"port":"http"}},"resources":{"requests":{"cpu":"250m"}}}],` +
				`"nodeName":"n1","nodeSelector":{"disk":""}}}`,
			status: `{"conditions":[{"lastTransitionTime":"2026-11-22T10:30:00Z","status":"True","type":"Ready"}],` +
				`"containerStatuses":[{"image":"","imageID":"","name":"main","ready":true,"restartCount":0}],` +
				`"phase":"Running","podIP":"10.0.0.5"}`,
		},
		{
			name: "replicaset: replicas 0 and an empty selector mean something; a zero status is none",
			kind: "ReplicaSet",
			in: &appsv1.ReplicaSet{
				TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
				ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: "default"},
				Spec: appsv1.ReplicaSetSpec{
					Replicas: ptr(int32(0)),
					Selector: &metav1.LabelSelector{},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
					},
				},
			},
			spec: `{"spec":{"replicas":0,"selector":{},"template":{"metadata":{"labels":{"app":"x"}},` +
				`"spec":{"containers":[{"image":"i","name":"c"}]}}}}`,
		},
		{
			name:   "replicaset status",
			kind:   "ReplicaSet",
			in:     &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs"}, Status: appsv1.ReplicaSetStatus{Replicas: 0, ReadyReplicas: 2}},
			status: `{"readyReplicas":2,"replicas":0}`, // replicas has no omitempty: kept, as Kubernetes prints it
		},
		{
			name: "event: top-level fields, empty reportingComponent left out",
			kind: "Event",
			in: &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "e", Namespace: "default"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p"},
				Reason:         "Started", Count: 1, FirstTimestamp: metav1.NewTime(createdAt),
			},
			spec: `{"count":1,"firstTimestamp":"2026-11-22T10:30:00Z","involvedObject":{"kind":"Pod","name":"p"},"reason":"Started"}`,
		},
		{
			name: "placement guard",
			kind: PlacementGuardKind,
			in:   &PlacementGuard{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: PlacementGuardSpec{Revision: 3}},
			spec: `{"spec":{"revision":3}}`,
		},
		{name: "unknown kind", kind: "Frobnicator", in: typedPod(), wantErr: `unknown kind "Frobnicator"`},
		{
			name: "kind disagrees with TypeMeta", kind: "Node",
			in:      &corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod"}},
			wantErr: `convert *v1.Pod to Node: its kind is "Pod"`,
		},
		{
			name: "apiVersion disagrees", kind: "Deployment",
			in:      &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "extensions/v1beta1"}},
			wantErr: `apiVersion "extensions/v1beta1" does not serve kind Deployment`,
		},
		{
			name: "bad resourceVersion", kind: "Pod",
			in:      &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "x1"}},
			wantErr: `resourceVersion "x1" is not a decimal number`,
		},
		{name: "not a struct", kind: "Pod", in: "pod", wantErr: "not a struct"},
		{name: "nil", kind: "Pod", in: nil, wantErr: "not a struct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := FromTyped(tt.kind, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromTyped error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromTyped: %v", err)
			}
			if k, _ := KindFor(tt.kind); o.Kind != tt.kind || o.ApiVersion != k.APIVersion {
				t.Errorf("kind, apiVersion = %s, %s", o.Kind, o.ApiVersion)
			}
			if string(o.Spec) != tt.spec {
				t.Errorf("spec =\n%s\nwant\n%s", o.Spec, tt.spec)
			}
			if string(o.Status) != tt.status {
				t.Errorf("status =\n%s\nwant\n%s", o.Status, tt.status)
			}
			if !tt.checkIdent {
				return
			}
			want := &shoalpb.Object{
				Kind: "Pod", ApiVersion: "v1", Namespace: "shop", Name: "web-1", Uid: "u-1",
				ResourceVersion: 42, Generation: 3, CreateTimeUnixNano: createdAt.UnixNano(),
				Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"note": "x"},
				OwnerReferences: []*shoalpb.OwnerReference{
					{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", Uid: "u-0", Controller: true},
					{ApiVersion: "v1", Kind: "ConfigMap", Name: "c", Uid: "u-2"},
				},
				Spec: o.Spec,
			}
			if !proto.Equal(o, want) {
				t.Errorf("FromTyped =\n%v\nwant\n%v", o, want)
			}
		})
	}
}

// TestTypedRoundTrip checks that Decode then FromTyped gives back the stored
// object: what a controller does when it reads, changes nothing, and writes.
func TestTypedRoundTrip(t *testing.T) {
	running := typedPod()
	running.Status = corev1.PodStatus{Phase: corev1.PodPending, Message: "pulling"}
	tests := []struct {
		name  string
		kind  string
		in    any
		fresh func() any
	}{
		{"pod", "Pod", running, func() any { return &corev1.Pod{} }},
		{"deployment", "Deployment", &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr(int32(3)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge: ptr(intstr.FromString("25%")), MaxUnavailable: ptr(intstr.FromInt32(0)),
				}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}},
				},
			},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, LastUpdateTime: metav1.NewTime(createdAt)},
			}},
		}, func() any { return &appsv1.Deployment{} }},
		{"node", "Node", &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}},
			Spec:       corev1.NodeSpec{PodCIDR: "10.244.1.0/24", Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
		}, func() any { return &corev1.Node{} }},
		{"placement guard", PlacementGuardKind, &PlacementGuard{
			ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: PlacementGuardSpec{Revision: 7},
		}, func() any { return &PlacementGuard{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := FromTyped(tt.kind, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			typed := tt.fresh()
			if err := Decode(o, typed); err != nil {
				t.Fatal(err)
			}
			again, err := FromTyped(tt.kind, typed)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(again, o) {
				t.Fatalf("round trip gave\n%v\nwant\n%v", again, o)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	o := &shoalpb.Object{
		Kind: "Pod", ApiVersion: "v1", Namespace: "default", Name: "p", ResourceVersion: 9,
		Labels: map[string]string{"app": "web"},
		Spec:   []byte(`{"spec":{"containers":[{"name":"c","image":"i","resources":{"requests":{"cpu":0.5}}}],"nodeName":"n1"}}`),
		Status: []byte(`{"phase":"Running","podIP":"10.0.0.9"}`),
	}
	var pod corev1.Pod
	if err := Decode(o, &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Kind != "Pod" || pod.Name != "p" || pod.ResourceVersion != "9" || pod.Labels["app"] != "web" ||
		pod.Spec.NodeName != "n1" || pod.Status.PodIP != "10.0.0.9" {
		t.Fatalf("Decode = %+v", pod)
	}
	if cpu := pod.Spec.Containers[0].Resources.Requests.Cpu(); cpu.MilliValue() != 500 {
		t.Fatalf("cpu request = %v, want 500m", cpu)
	}
	// A number a user wrote for a quantity comes back in its canonical form.
	back, err := FromTyped("Pod", &pod)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"spec":{"containers":[{"image":"i","name":"c","resources":{"requests":{"cpu":"500m"}}}],"nodeName":"n1"}}`; string(back.Spec) != want {
		t.Fatalf("FromTyped spec = %s, want %s", back.Spec, want)
	}

	var status corev1.PodStatus
	if err := StatusOf(o, &status); err != nil || status.Phase != corev1.PodRunning {
		t.Fatalf("StatusOf = %+v, %v", status, err)
	}
	untouched := corev1.PodStatus{Phase: corev1.PodUnknown}
	if err := StatusOf(&shoalpb.Object{Kind: "Pod"}, &untouched); err != nil || untouched.Phase != corev1.PodUnknown {
		t.Fatalf("StatusOf without status = %+v, %v", untouched, err)
	}

	for name, bad := range map[string]*shoalpb.Object{
		"broken spec":     {Kind: "Pod", Name: "p", Spec: []byte(`{`)},
		"type mismatch":   {Kind: "Pod", Name: "p", Spec: []byte(`{"spec":{"containers":"x"}}`)},
		"status not JSON": {Kind: "Pod", Name: "p", Status: []byte(`{`)},
		"status mismatch": {Kind: "Pod", Name: "p", Status: []byte(`{"phase":1}`)},
	} {
		var p corev1.Pod
		err := Decode(bad, &p)
		if name == "status mismatch" {
			err = StatusOf(bad, &p.Status)
		}
		if err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// TestDecodeEqualsDecodingTheRendering checks that Decode's direct path
// gives exactly what decoding ToJSON's rendering gives, for every kind.
func TestDecodeEqualsDecodingTheRendering(t *testing.T) {
	full := func(kind, apiVersion, ns, spec, status string) *shoalpb.Object {
		return &shoalpb.Object{Kind: kind, ApiVersion: apiVersion, Namespace: ns, Name: "x", Uid: "u-1",
			ResourceVersion: 42, CreateRevision: 7, Generation: 3, CreateTimeUnixNano: 1_763_900_000_123_456_789,
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"},
			OwnerReferences: []*shoalpb.OwnerReference{{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", Uid: "u-0", Controller: true},
				{ApiVersion: "v1", Kind: "ConfigMap", Name: "cm", Uid: "u-9"}},
			Spec: []byte(spec), Status: []byte(status)}
	}
	cases := []struct {
		name string
		o    *shoalpb.Object
		into func() any
	}{
		{"pod", full("Pod", "v1", "default",
			`{"spec":{"containers":[{"name":"c","image":"i","resources":{"requests":{"cpu":"250m","memory":"64Mi"}}}],"nodeName":"n1","terminationGracePeriodSeconds":5}}`,
			`{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-11-23T10:00:00Z"}]}`),
			func() any { return &corev1.Pod{} }},
		{"pod without status or metadata", &shoalpb.Object{Kind: "Pod", ApiVersion: "v1", Namespace: "ns", Name: "p"},
			func() any { return &corev1.Pod{} }},
		{"node", full("Node", "v1", "", `{"spec":{"podCIDR":"10.1.0.0/24","taints":[{"key":"k","effect":"NoSchedule"}]}}`,
			`{"allocatable":{"cpu":"2","pods":"110"}}`), func() any { return &corev1.Node{} }},
		{"namespace", full("Namespace", "v1", "", ``, ``), func() any { return &corev1.Namespace{} }},
		{"deployment", full("Deployment", "apps/v1", "default",
			`{"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`,
			`{"replicas":3,"readyReplicas":2}`), func() any { return &appsv1.Deployment{} }},
		{"config map", full("ConfigMap", "v1", "default", `{"data":{"k":"v"}}`, ``), func() any { return &corev1.ConfigMap{} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fast, slow := tc.into(), tc.into()
			if err := Decode(tc.o, fast); err != nil {
				t.Fatal(err)
			}
			if err := decodeViaJSON(tc.o, slow); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("Decode gave\n%+v\nrendering gave\n%+v", fast, slow)
			}
		})
	}
}
