package manifest

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/proto/shoalpb"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// goodFiles are the testdata manifests that decode without error.
var goodFiles = []string{"good.yaml", "getoutput.yaml", "stream.json", "deployment.yaml", "workloads.yaml"}

// podDoc and deploymentDoc seed the fuzzer with the new kinds.
const (
	podDoc = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: a}}\nspec:\n" +
		"  nodeName: n1\n  restartPolicy: Never\n  tolerations: [{operator: Exists}]\n" +
		"  containers:\n  - name: c\n    image: i\n    env: [{name: A, value: x}]\n" +
		"    ports: [{name: http, containerPort: 80, hostPort: 8080}]\n" +
		"    resources: {requests: {cpu: 0.5, memory: 64Mi}, limits: {cpu: 1}}\n" +
		"    livenessProbe: {httpGet: {port: http, path: /}, periodSeconds: 3}\n"
	deploymentDoc = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n" +
		"  replicas: 2\n  strategy: {rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}}\n" +
		"  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}, creationTimestamp: null}\n" +
		"    spec:\n      containers: [{name: c, image: i, readinessProbe: {tcpSocket: {port: 80}}}]\n"
)

func TestDecodeWorkloads(t *testing.T) {
	var keys []string
	var objs []*shoalpb.Object
	for _, file := range []string{"deployment.yaml", "workloads.yaml"} {
		got, err := Decode(readTestdata(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, o := range got {
			keys = append(keys, object.KeyOf(o))
			if len(o.Status) != 0 {
				t.Errorf("%s: status kept from the manifest: %s", object.KeyOf(o), o.Status)
			}
		}
		objs = append(objs, got...)
	}
	want := []string{
		"Deployment/shop/web", "Pod/default/one-off", "ReplicaSet/shop/cache", "Deployment/default/recreate",
		"Node//n1", "Event/shop/web-7d9f.17c9a1b2c3d4e5f6",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("decoded %v, want %v", keys, want)
	}

	// The full Deployment reaches the typed struct whole.
	var d appsv1.Deployment
	if err := object.Decode(objs[0], &d); err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 3 || !d.Spec.Paused || *d.Spec.ProgressDeadlineSeconds != 120 ||
		d.Spec.Strategy.RollingUpdate.MaxUnavailable.StrVal != "25%" || d.Spec.Template.CreationTimestamp != (metav1.Time{}) {
		t.Errorf("deployment spec = %+v", d.Spec)
	}
	spec := d.Spec.Template.Spec
	web := spec.Containers[0]
	if len(spec.Containers) != 2 || len(web.Env) != 8 || len(web.Ports) != 4 || spec.Affinity.PodAntiAffinity == nil ||
		spec.Tolerations[1].TolerationSeconds == nil || web.StartupProbe.Exec == nil {
		t.Errorf("pod template = %+v", spec)
	}
	if lim := web.Resources.Limits[corev1.ResourceMemory]; lim.Cmp(resource.MustParse("128Mi")) != 0 {
		t.Errorf("memory limit = %v", lim)
	}
	if web.LivenessProbe.HTTPGet.Port.StrVal != "http" || web.ReadinessProbe.TCPSocket.Port.IntVal != 8080 {
		t.Errorf("probe ports = %v, %v", web.LivenessProbe.HTTPGet.Port, web.ReadinessProbe.TCPSocket.Port)
	}
	if strings.Contains(string(objs[0].Spec), "creationTimestamp") {
		t.Errorf("null creationTimestamp of the template was stored: %s", objs[0].Spec)
	}
}

func TestDecodeBadFiles(t *testing.T) {
	tests := []struct {
		file string
		doc  int
		path string
		msg  string // prefix of Error.Msg
	}{
		// Fields Shoal does not implement.
		{"unsupported-initcontainers.yaml", 1, "spec.template.spec.initContainers", "not supported"},
		{"unsupported-resource.yaml", 1, "spec.containers[0].resources.requests.nvidia.com/gpu", "not supported"},
		{"node-unsupported.yaml", 1, "spec.providerID", "not supported"},
		{"fieldpath.yaml", 1, "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", `"metadata.labels": not supported; supported values: "metadata.name"`},
		{"internal-kind.yaml", 2, "kind", `kind "PlacementGuard" is internal to Shoal`},
		{"unknown-field.yaml", 1, "spec.containers[0].hostPort", "unknown field"},
		// Values that do not parse.
		{"quantity.yaml", 2, "spec.containers[0].resources.requests.cpu", `"lots" is not a valid quantity`},
		{"strategy-type.yaml", 1, "spec.strategy.rollingUpdate.maxSurge", "must be an integer or a string, not a bool"},
		{"event-time.yaml", 1, "firstTimestamp", `"yesterday" is not a valid time`},
		{"probe-exec-type.yaml", 1, "spec.containers[0].livenessProbe.exec.command[0]", "must be a string, not a bool"},
		// Resources.
		{"requests-over-limits.yaml", 1, "spec.containers[0].resources.requests.memory", `"256Mi": must be less than or equal to the memory limit "128Mi"`},
		{"negative-quantity.yaml", 1, "spec.containers[0].resources.limits.cpu", `"-1": must be greater than or equal to 0`},
		// Containers.
		{"no-containers.yaml", 1, "spec.containers", "required"},
		{"container-name.yaml", 1, "spec.containers[0].name", `"Web_1": a lowercase RFC 1123 label`},
		{"duplicate-container.yaml", 1, "spec.template.spec.containers[1].name", `"main": duplicate name`},
		{"no-image.yaml", 1, "spec.containers[0].image", "required"},
		{"port-range.yaml", 1, "spec.containers[0].ports[1].containerPort", "70000: must be between 1 and 65535"},
		{"protocol.yaml", 1, "spec.containers[0].ports[0].protocol", `"HTTP": not supported; supported values: "TCP", "UDP", "SCTP"`},
		{"duplicate-host-port.yaml", 1, "spec.containers[1].ports[0].hostPort", "8080/TCP: duplicate host port"},
		{"env-value-and-from.yaml", 1, "spec.containers[0].env[0].valueFrom", "may not be set when value is not empty"},
		// Probes.
		{"probe-handlers.yaml", 3, "spec.containers[0].livenessProbe", "must specify exactly one handler"},
		{"probe-no-handler.yaml", 1, "spec.containers[0].readinessProbe", "must specify exactly one handler"},
		{"probe-negative.yaml", 1, "spec.containers[0].readinessProbe.failureThreshold", "-1: must be greater than or equal to 0"},
		{"probe-period.yaml", 1, "spec.containers[0].startupProbe.periodSeconds", "-5: must be greater than or equal to 1"},
		{"probe-port-name.yaml", 1, "spec.containers[0].livenessProbe.httpGet.port", `"admin": the container has no port of this name`},
		// Pod scheduling.
		{"restart-policy.yaml", 1, "spec.restartPolicy", `"Sometimes": not supported`},
		{"toleration-operator.yaml", 1, "spec.tolerations[0].operator", `"Maybe": not supported`},
		{"toleration-empty-key.yaml", 1, "spec.tolerations[0].operator", "must be Exists when key is empty"},
		{"node-affinity-operator.yaml", 1, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[1].matchExpressions[0].operator", `"Near": not supported`},
		{"pod-affinity-topology.yaml", 1, "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey", "required"},
		// ReplicaSets and Deployments.
		{"replicas.yaml", 1, "spec.replicas", "-1: must be greater than or equal to 0"},
		{"selector-missing.yaml", 1, "spec.selector", "required"},
		{"selector-mismatch.yaml", 1, "spec.template.metadata.labels", "does not match spec.selector"},
		{"selector-operator.yaml", 1, "spec.selector.matchExpressions[0].operator", `"Like": not a valid selector operator`},
		{"deployment-restart-policy.yaml", 1, "spec.template.spec.restartPolicy", `"Never": not supported; supported values: "Always"`},
		{"strategy-zero.yaml", 1, "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0"},
		// Nodes and events.
		{"taint.yaml", 1, "spec.taints[0].effect", "required"},
		{"event-namespace.yaml", 1, "involvedObject.namespace", `"other": does not match metadata.namespace "shop"`},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.ContainsFunc(tests, func(tt struct {
			file string
			doc  int
			path string
			msg  string
		}) bool {
			return tt.file == filepath.Base(f)
		}) {
			t.Errorf("%s has no test case", f)
		}
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			objs, err := DecodeFiles([]string{path}, nil)
			if err == nil {
				t.Fatalf("DecodeFiles succeeded with %v; want an error", objs)
			}
			t.Log(err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.File != path || e.Doc != tt.doc || e.Path != tt.path || !strings.HasPrefix(e.Msg, tt.msg) {
				t.Fatalf("error = %#v\nwant File %s, Doc %d, Path %q, Msg starting %q", e, path, tt.doc, tt.path, tt.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has more than one line: %q", err.Error())
			}
		})
	}
}

// typedFor returns an empty typed struct for a kind of this package.
func typedFor(t *testing.T, kind string) any {
	t.Helper()
	dec, ok := decoders[kind]
	if !ok {
		t.Fatalf("no decoder for %s", kind)
	}
	return dec.new()
}

// TestTypedRoundTrip checks that what a controller reads with object.Decode
// and writes back unchanged with object.FromTyped is the object stored from
// the user's manifest, so that the write changes nothing.
func TestTypedRoundTrip(t *testing.T) {
	for _, file := range []string{"deployment.yaml", "workloads.yaml"} {
		objs, err := Decode(readTestdata(t, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			t.Run(object.KeyOf(o), func(t *testing.T) {
				stored := proto.Clone(o).(*shoalpb.Object)
				stored.Uid, stored.Generation = "u-1", 2
				// Statuses as the controllers and agents write them.
				stored.Status = map[string][]byte{
					"Pod":        []byte(`{"hostIP":"10.0.0.1","phase":"Running","podIP":"10.244.1.5"}`),
					"ReplicaSet": []byte(`{"observedGeneration":1,"readyReplicas":2,"replicas":2}`),
					"Deployment": []byte(`{"observedGeneration":1,"updatedReplicas":3}`),
					"Node":       []byte(`{"capacity":{"cpu":"4","memory":"8Gi"},"conditions":[{"status":"True","type":"Ready"}]}`),
				}[o.Kind]
				typed := typedFor(t, o.Kind)
				if err := object.Decode(stored, typed); err != nil {
					t.Fatal(err)
				}
				back, err := object.FromTyped(o.Kind, typed)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(back, stored) {
					t.Fatalf("FromTyped(Decode(o)) =\n%v\nwant\n%v", back, stored)
				}
				if err := ValidateObject(back); err != nil {
					t.Fatalf("ValidateObject: %v", err)
				}
			})
		}
	}
}

// TestFromTypedValidates checks that objects controllers build from typed
// structs pass the server's validation.
func TestFromTypedValidates(t *testing.T) {
	replicas := int32(2)
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "pod-template-hash": "5d4f"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "web:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
		}}},
	}
	controller := true
	tests := []struct {
		kind string
		obj  any
	}{
		{"ReplicaSet", &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web-5d4f", Namespace: "default", OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u-1", Controller: &controller},
			}},
			Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: tmpl},
		}},
		{"Pod", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-5d4f-x", Namespace: "default", Labels: tmpl.Labels}, Spec: tmpl.Spec}},
		{"Event", &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "web-5d4f-x.1", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-5d4f-x"},
			Reason:         "Scheduled", Type: corev1.EventTypeNormal, Count: 1,
		}},
		{"PlacementGuard", &object.PlacementGuard{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: object.PlacementGuardSpec{Revision: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			o, err := object.FromTyped(tt.kind, tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateObject(o); err != nil {
				t.Fatalf("ValidateObject(%s): %v", o.Spec, err)
			}
		})
	}
}

func TestNumericQuantity(t *testing.T) {
	objs, err := Decode(Source{Name: "q.yaml", Data: []byte(podDoc)})
	if err != nil {
		t.Fatal(err)
	}
	// Stored as written; object.FromTyped would write "500m".
	if !strings.Contains(string(objs[0].Spec), `"requests":{"cpu":0.5,"memory":"64Mi"}`) {
		t.Fatalf("spec = %s", objs[0].Spec)
	}
}

// TestWorkloadRules covers the rules that the files under testdata/bad do
// not, with one inline document each.
func TestWorkloadRules(t *testing.T) {
	pod := func(spec, container string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + spec +
			"  containers:\n  - name: c\n    image: i\n" + container
	}
	deploy := func(spec string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n" + spec +
			"  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n" +
			"    spec: {containers: [{name: c, image: i}]}\n"
	}
	tests := []struct {
		name string
		in   string
		path string
		msg  string
	}{
		{"pull policy", pod("", "    imagePullPolicy: Sometimes\n"), "spec.containers[0].imagePullPolicy", `"Sometimes": not supported`},
		{"termination message path", pod("", "    terminationMessagePath: /tmp/x\n"), "spec.containers[0].terminationMessagePath", `"/tmp/x": not supported; only the default`},
		{"termination message policy", pod("", "    terminationMessagePolicy: FallbackToLogsOnError\n"), "spec.containers[0].terminationMessagePolicy", `"FallbackToLogsOnError": not supported`},
		{"image with spaces", strings.Replace(pod("", ""), "image: i", `image: " i"`, 1), "spec.containers[0].image", `" i": must not have leading or trailing whitespace`},
		{"env name", pod("", "    env: [{name: \"A=B\", value: x}]\n"), "spec.containers[0].env[0].name", `"A=B"`},
		{"env from nothing", pod("", "    env: [{name: A, valueFrom: {}}]\n"), "spec.containers[0].env[0].valueFrom", "must set fieldRef or configMapKeyRef"},
		{"configMapKeyRef without key", pod("", "    env: [{name: A, valueFrom: {configMapKeyRef: {name: c}}}]\n"), "spec.containers[0].env[0].valueFrom.configMapKeyRef.key", "required"},
		{"fieldRef apiVersion", pod("", "    env: [{name: A, valueFrom: {fieldRef: {apiVersion: v2, fieldPath: metadata.name}}}]\n"), "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion", `"v2": not supported`},
		{"port name", pod("", "    ports: [{name: HTTP_1, containerPort: 80}]\n"), "spec.containers[0].ports[0].name", `"HTTP_1"`},
		{"duplicate port name", pod("", "    ports: [{name: http, containerPort: 80}, {name: http, containerPort: 81}]\n"), "spec.containers[0].ports[1].name", `"http": duplicate port name`},
		{"host port range", pod("", "    ports: [{containerPort: 80, hostPort: 65536}]\n"), "spec.containers[0].ports[0].hostPort", "65536: must be between 1 and 65535"},
		{"host IP", pod("", "    ports: [{containerPort: 80, hostIP: 300.1.1.1}]\n"), "spec.containers[0].ports[0].hostIP", `"300.1.1.1"`},
		{"exec without command", pod("", "    livenessProbe: {exec: {command: []}, periodSeconds: 2}\n"), "spec.containers[0].livenessProbe.exec.command", "required"},
		{"http scheme", pod("", "    readinessProbe: {httpGet: {port: 80, scheme: FTP}}\n"), "spec.containers[0].readinessProbe.httpGet.scheme", `"FTP": not supported`},
		{"http header", pod("", "    readinessProbe: {httpGet: {port: 80, httpHeaders: [{name: \"a b\", value: x}]}}\n"), "spec.containers[0].readinessProbe.httpGet.httpHeaders[0].name", `"a b"`},
		{"probe port range", pod("", "    readinessProbe: {tcpSocket: {port: 0}}\n"), "spec.containers[0].readinessProbe.tcpSocket.port", "0: must be between 1 and 65535"},
		{"liveness success threshold", pod("", "    livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}\n"), "spec.containers[0].livenessProbe.successThreshold", "2: must be 1 for a livenessProbe"},
		{"readiness grace period", pod("", "    readinessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 5}\n"), "spec.containers[0].readinessProbe.terminationGracePeriodSeconds", "may not be set for a readinessProbe"},
		{"probe grace period", pod("", "    startupProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 0}\n"), "spec.containers[0].startupProbe.terminationGracePeriodSeconds", "0: must be greater than or equal to 1"},
		{"grace period", pod("  terminationGracePeriodSeconds: -1\n", ""), "spec.terminationGracePeriodSeconds", "-1: must be greater than or equal to 0"},
		{"node selector", pod("  nodeSelector: {zone: \"a b\"}\n", ""), "spec.nodeSelector.zone", `"a b"`},
		{"node affinity Gt", pod("  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: cores, operator: Gt, values: [many]}]}]}}}\n", ""),
			"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]", `"many": must be an integer`},
		{"node affinity Exists with values", pod("  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: k, operator: Exists, values: [a]}]}]}}}\n", ""),
			"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values", "must be empty"},
		{"node affinity without terms", pod("  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}\n", ""),
			"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", "required"},
		{"preferred weight", pod("  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 101, preference: {}}]}}\n", ""),
			"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight", "101: must be between 1 and 100"},
		{"pod affinity selector", pod("  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: zone, labelSelector: {matchExpressions: [{key: app, operator: In}]}}]}}\n", ""),
			"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].values", "required"},
		{"pod affinity namespace", pod("  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: zone, namespaces: [A]}]}}\n", ""),
			"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaces[0]", `"A"`},
		{"pod affinity namespaceSelector", pod("  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: zone, namespaceSelector: {matchLabels: {a: b}}}]}}\n", ""),
			"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaceSelector", "not supported"},
		{"toleration Exists with value", pod("  tolerations: [{key: k, operator: Exists, value: v}]\n", ""), "spec.tolerations[0].value", "must be empty when operator is Exists"},
		{"toleration effect", pod("  tolerations: [{key: k, value: v, effect: Never}]\n", ""), "spec.tolerations[0].effect", `"Never": not supported`},
		{"toleration seconds", pod("  tolerations: [{key: k, value: v, effect: NoSchedule, tolerationSeconds: 3}]\n", ""), "spec.tolerations[0].tolerationSeconds", "may only be set when effect is NoExecute"},
		{"dns: accepted", pod("  dnsPolicy: None\n  enableServiceLinks: false\n  dnsConfig: {nameservers: [10.0.0.10, \"fd00::a\"], searches: [a.example, b.example.], options: [{name: ndots, value: \"2\"}, {name: rotate}]}\n", ""), "", ""},
		{"dns: ClusterFirstWithHostNet accepted", pod("  dnsPolicy: ClusterFirstWithHostNet\n  dnsConfig: {searches: [x.example]}\n", ""), "", ""},
		{"dns policy", pod("  dnsPolicy: Cluster\n", ""), "spec.dnsPolicy", `"Cluster": not supported; supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`},
		{"dns None without config", pod("  dnsPolicy: None\n", ""), "spec.dnsConfig", "required: must provide `dnsConfig` when `dnsPolicy` is None"},
		{"dns None without nameservers", pod("  dnsPolicy: None\n  dnsConfig: {searches: [a.example]}\n", ""), "spec.dnsConfig.nameservers", "required: must provide at least one DNS nameserver"},
		{"dns nameserver", pod("  dnsConfig: {nameservers: [dns.example]}\n", ""), "spec.dnsConfig.nameservers[0]", `"dns.example": must be a valid IP address`},
		{"dns too many nameservers", pod("  dnsConfig: {nameservers: [1.1.1.1, 2.2.2.2, 3.3.3.3, 4.4.4.4]}\n", ""), "spec.dnsConfig.nameservers", "must not have more than 3 nameservers"},
		{"dns search", pod("  dnsConfig: {searches: [\"a b\"]}\n", ""), "spec.dnsConfig.searches[0]", `"a b": a lowercase RFC 1123 subdomain`},
		{"dns too many searches", pod("  dnsConfig: {searches: ["+strings.Repeat("s.example, ", 33)+"]}\n", ""), "spec.dnsConfig.searches", "must not have more than 32 search paths"},
		{"dns search list too long", pod("  dnsConfig: {searches: ["+strings.Repeat(strings.Repeat("a", 60)+"."+strings.Repeat("b", 60)+".example, ", 20)+"]}\n", ""), "spec.dnsConfig.searches", "must not have more than 2048 characters"},
		{"dns option without name", pod("  dnsConfig: {options: [{value: \"1\"}]}\n", ""), "spec.dnsConfig.options[0].name", "required"},
		{"dns unknown field", pod("  dnsConfig: {resolver: x}\n", ""), "spec.dnsConfig.resolver", "unknown field"},
		{"deployment template dns policy", strings.Replace(deploy(""), "spec: {containers", "spec: {dnsPolicy: Nope, containers", 1), "spec.template.spec.dnsPolicy", `"Nope": not supported`},
		{"hostname", pod("  hostname: h\n", ""), "spec.hostname", "not supported"},
		{"stdin", pod("", "    stdin: true\n"), "spec.containers[0].stdin", "not supported"},
		{"resource claims", pod("", "    resources: {claims: [{name: gpu}]}\n"), "spec.containers[0].resources.claims", "not supported"},
		{"control: accepted", deploy("  replicas: 1\n"), "", ""},
		{"recreate with rollingUpdate", deploy("  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n"), "spec.strategy.rollingUpdate", "may not be set when type is Recreate"},
		{"strategy type", deploy("  strategy: {type: BlueGreen}\n"), "spec.strategy.type", `"BlueGreen": not supported`},
		{"max unavailable over 100%", deploy("  strategy: {rollingUpdate: {maxUnavailable: 150%}}\n"), "spec.strategy.rollingUpdate.maxUnavailable", `"150%": must not be greater than 100%`},
		{"max surge not a percent", deploy("  strategy: {rollingUpdate: {maxSurge: lots}}\n"), "spec.strategy.rollingUpdate.maxSurge", `"lots": a valid percent string`},
		{"negative max surge", deploy("  strategy: {rollingUpdate: {maxSurge: -1}}\n"), "spec.strategy.rollingUpdate.maxSurge", "-1: must be greater than or equal to 0"},
		{"progress deadline", deploy("  minReadySeconds: 10\n  progressDeadlineSeconds: 10\n"), "spec.progressDeadlineSeconds", "10: must be greater than minReadySeconds (10)"},
		// Rollout strategies.
		{"surge and unavailable both 0", deploy("  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}\n"), "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0"},
		{"surge and unavailable both 0%", deploy("  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0%, maxUnavailable: 0%}}\n"), "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0"},
		{"surge 0 with the default unavailable: accepted", deploy("  strategy: {rollingUpdate: {maxSurge: 0}}\n"), "", ""},
		{"unavailable 0 with the default surge: accepted", deploy("  strategy: {rollingUpdate: {maxUnavailable: 0}}\n"), "", ""},
		{"surge 1, unavailable 0: accepted", deploy("  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n  minReadySeconds: 1\n  progressDeadlineSeconds: 10\n  paused: true\n"), "", ""},
		{"surge above 100%: accepted", deploy("  strategy: {rollingUpdate: {maxSurge: 200%, maxUnavailable: 100%}}\n"), "", ""},
		{"Recreate: accepted", deploy("  strategy: {type: Recreate}\n"), "", ""},
		{"recreate with an empty rollingUpdate", deploy("  strategy: {type: Recreate, rollingUpdate: {}}\n"), "spec.strategy.rollingUpdate", "may not be set when type is Recreate"},
		{"fractional percentage", deploy("  strategy: {rollingUpdate: {maxUnavailable: 12.5%}}\n"), "spec.strategy.rollingUpdate.maxUnavailable", `"12.5%": a valid percent string`},
		{"negative percentage", deploy("  strategy: {rollingUpdate: {maxSurge: -5%}}\n"), "spec.strategy.rollingUpdate.maxSurge", `"-5%": a valid percent string`},
		{"percent sign alone", deploy("  strategy: {rollingUpdate: {maxSurge: \"%\"}}\n"), "spec.strategy.rollingUpdate.maxSurge", `"%": a valid percent string`},
		{"negative max unavailable", deploy("  strategy: {rollingUpdate: {maxUnavailable: -1}}\n"), "spec.strategy.rollingUpdate.maxUnavailable", "-1: must be greater than or equal to 0"},
		{"revision history", deploy("  revisionHistoryLimit: -2\n"), "spec.revisionHistoryLimit", "-2: must be greater than or equal to 0"},
		{"min ready", deploy("  minReadySeconds: -2\n"), "spec.minReadySeconds", "-2: must be greater than or equal to 0"},
		{"template label", "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  selector: {matchLabels: {app: r}}\n  template:\n    metadata: {labels: {app: r, \"x y\": z}}\n    spec: {containers: [{name: c, image: i}]}\n",
			"spec.template.metadata.labels.x y", "invalid key"},
		{"template name", "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  selector: {matchLabels: {app: r}}\n  template:\n    metadata: {name: x, labels: {app: r}}\n    spec: {containers: [{name: c, image: i}]}\n",
			"spec.template.metadata.name", "not supported"},
		{"selector that selects everything", "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  selector: {}\n  template:\n    metadata: {labels: {app: r}}\n    spec: {containers: [{name: c, image: i}]}\n",
			"spec.selector", "must not be empty"},
		{"replica set restart policy", "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  selector: {matchLabels: {app: r}}\n  template:\n    metadata: {labels: {app: r}}\n    spec: {restartPolicy: OnFailure, containers: [{name: c, image: i}]}\n",
			"spec.template.spec.restartPolicy", `"OnFailure": not supported; supported values: "Always"`},
		{"pod CIDR", "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.0.0.1/24}\n", "spec.podCIDR", `"10.0.0.1/24": must not have bits set beyond the prefix length`},
		{"duplicate taint", "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {taints: [{key: k, effect: NoSchedule}, {key: k, value: v, effect: NoSchedule}]}\n", "spec.taints[1]", "taint k:NoSchedule is also spec.taints[0]"},
		{"node namespace", "apiVersion: v1\nkind: Node\nmetadata: {name: n1, namespace: default}\n", "metadata.namespace", `"default": a Node is cluster-scoped`},
		{"event type", "apiVersion: v1\nkind: Event\nmetadata: {name: e}\ninvolvedObject: {kind: Pod, name: p}\ntype: Error\n", "type", `"Error": not supported; supported values: "Normal", "Warning"`},
		{"event count", "apiVersion: v1\nkind: Event\nmetadata: {name: e}\ninvolvedObject: {kind: Pod, name: p}\ncount: -1\n", "count", "-1: must be greater than or equal to 0"},
		{"event without object", "apiVersion: v1\nkind: Event\nmetadata: {name: e}\nreason: X\n", "involvedObject.kind", "required"},
		{"event times", "apiVersion: v1\nkind: Event\nmetadata: {name: e}\ninvolvedObject: {kind: Pod, name: p}\nfirstTimestamp: \"2026-01-02T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\n", "lastTimestamp", "must not be before firstTimestamp"},
		{"event series", "apiVersion: v1\nkind: Event\nmetadata: {name: e}\ninvolvedObject: {kind: Pod, name: p}\nseries: {count: 2}\n", "series", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(Source{Name: "r.yaml", Data: []byte(tt.in)})
			if tt.path == "" && tt.msg == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			t.Log(err)
			if e.Doc != 1 || e.Path != tt.path || !strings.HasPrefix(e.Msg, tt.msg) {
				t.Fatalf("error = %#v\nwant Doc 1, Path %q, Msg starting %q", e, tt.path, tt.msg)
			}
		})
	}
}
