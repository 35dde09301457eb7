package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/e2e/harness"
)

// TestBadInputIsRefusedAndStoresNothing covers acceptance 6: every kind of
// bad input gives one clear line naming what is wrong and where, a non-zero
// exit, and leaves the store as it was.
func TestBadInputIsRefusedAndStoresNothing(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 1, harness.Options{BootstrapExpect: 1})
	c.StartAll()
	c.WaitFormed(30*time.Second, 1, 0)
	a := c.Agents[0]
	c.MustCLI(a, "apply", "-f", configMap(t, "keep", "1"))

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok-one\ndata:\n  a: b\n"
	tests := []struct {
		name   string
		args   []string
		server string // default: the agent
		want   []string
	}{
		{
			name: "malformed YAML in a later document",
			args: []string{"apply", "-f", write("malformed.yaml", good+"---\napiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n")},
			want: []string{"malformed.yaml", "document 2"},
		},
		{
			name: "unknown field",
			args: []string{"apply", "-f", write("unknown.yaml", good+"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\nspecial: true\n")},
			want: []string{"unknown.yaml", "document 2", "special", "unknown field"},
		},
		{
			name: "unknown nested field",
			args: []string{"apply", "-f", write("nested.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  colour: red\n")},
			want: []string{"nested.yaml", "document 1", "metadata.colour", "unknown field"},
		},
		{
			name: "unsupported field",
			args: []string{"apply", "-f", write("unsupported.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  generateName: y-\n")},
			want: []string{"unsupported.yaml", "metadata.generateName", "not supported"},
		},
		{
			name: "unknown kind in a manifest",
			args: []string{"apply", "-f", write("kind.yaml", good+"---\napiVersion: v1\nkind: Frobnicator\nmetadata:\n  name: x\n")},
			want: []string{"kind.yaml", "document 2", "Frobnicator", "unknown kind"},
		},
		{
			name: "bad name",
			args: []string{"apply", "-f", write("name.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")},
			want: []string{"name.yaml", "metadata.name", "Bad_Name"},
		},
		{
			name: "unsupported pod field",
			args: []string{"apply", "-f", write("init.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  initContainers: [{name: i, image: x}]\n  containers: [{name: c, image: x}]\n")},
			want: []string{"init.yaml", "document 1", "spec.initContainers", "not supported"},
		},
		{
			name: "probe without a handler",
			args: []string{"apply", "-f", write("probe.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: x\n      livenessProbe: {periodSeconds: 1}\n")},
			want: []string{"probe.yaml", "spec.containers[0].livenessProbe", "handler"},
		},
		{
			name: "negative replicas",
			args: []string{"apply", "-f", write("replicas.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: -1\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n      containers: [{name: c, image: x}]\n")},
			want: []string{"replicas.yaml", "spec.replicas", "greater than or equal to 0"},
		},
		{
			name: "bad quantity",
			args: []string{"apply", "-f", write("quantity.yaml", good+"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: x\n      resources: {requests: {cpu: lots}}\n")},
			want: []string{"quantity.yaml", "document 2", "spec.containers[0].resources.requests.cpu", "lots"},
		},
		{
			name: "service port out of range",
			args: []string{"apply", "-f", write("svcport.yaml", good+"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports: [{port: 70000}]\n")},
			want: []string{"svcport.yaml", "document 2", "spec.ports[0].port", "70000"},
		},
		{
			name: "duplicate node port",
			args: []string{"apply", "-f", write("nodeport.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  type: NodePort\n  ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]\n")},
			want: []string{"nodeport.yaml", "spec.ports[1].nodePort", "duplicate"},
		},
		{
			name: "service selector not a map",
			args: []string{"apply", "-f", write("selector.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  selector: [app, web]\n  ports: [{port: 80}]\n")},
			want: []string{"selector.yaml", "spec.selector"},
		},
		{
			name: "HPA for a StatefulSet",
			args: []string{"apply", "-f", write("hpa-kind.yaml", good+"---\n"+hpaDoc("{kind: StatefulSet, name: db}", "  maxReplicas: 3\n"))},
			want: []string{"hpa-kind.yaml", "document 2", "spec.scaleTargetRef.kind", "StatefulSet", "not supported"},
		},
		{
			name: "HPA with maxReplicas below minReplicas",
			args: []string{"apply", "-f", write("hpa-max.yaml", hpaDoc("{kind: Deployment, name: web}", "  minReplicas: 5\n  maxReplicas: 3\n"))},
			want: []string{"hpa-max.yaml", "spec.maxReplicas", "greater than or equal to minReplicas (5)"},
		},
		{
			name: "HPA on a Pods metric",
			args: []string{"apply", "-f", write("hpa-pods.yaml", hpaDoc("{kind: Deployment, name: web}", "  maxReplicas: 3\n  metrics: [{type: Pods, pods: {metric: {name: qps}, target: {type: AverageValue, averageValue: 10}}}]\n"))},
			want: []string{"hpa-pods.yaml", "spec.metrics[0].pods", "not supported"},
		},
		{
			name: "HPA stabilization window over an hour",
			args: []string{"apply", "-f", write("hpa-window.yaml", hpaDoc("{kind: Deployment, name: web}", "  maxReplicas: 3\n  behavior: {scaleDown: {stabilizationWindowSeconds: 7200}}\n"))},
			want: []string{"hpa-window.yaml", "spec.behavior.scaleDown.stabilizationWindowSeconds", "7200"},
		},
		{
			name: "scale to a negative count",
			args: []string{"scale", "deployment", "nothing", "--replicas", "-2"},
			want: []string{"--replicas -2"},
		},
		{
			name: "unknown kind on the command line",
			args: []string{"get", "frobnicators"},
			want: []string{`unknown kind "frobnicators"`},
		},
		{
			name: "bad selector",
			args: []string{"get", "configmaps", "-l", "app in (web"},
			want: []string{"bad label selector", "app in (web"},
		},
		{
			name:   "dead address",
			args:   []string{"get", "configmaps"},
			server: "127.0.250.9:7948",
			want:   []string{"cannot reach shoal agent at 127.0.250.9:7948", "connection refused"},
		},
		{
			name: "missing file",
			args: []string{"apply", "-f", filepath.Join(dir, "nope.yaml")},
			want: []string{"nope.yaml"},
		},
	}
	kinds := []string{"configmaps", "pods", "deployments", "replicasets", "services", "horizontalpodautoscalers"}
	snapshot := func() string {
		var out []string
		for _, k := range kinds {
			out = append(out, c.MustCLI(a, "get", k, "-A", "-o", "json"))
		}
		return strings.Join(out, "\n")
	}
	before := snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r harness.Result
			if tt.server != "" {
				bin, _ := harness.Binary()
				r = harness.RunCLI(bin, tt.server, nil, append(tt.args, "--timeout", "3s")...)
			} else {
				r = c.CLI(a, nil, tt.args...)
			}
			if r.Code == 0 {
				t.Fatalf("exit 0, want failure; stdout %q", r.Stdout)
			}
			lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one line on stderr, got %d: %q", len(lines), r.Stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.Stderr, w) {
					t.Fatalf("stderr %q does not mention %q", r.Stderr, w)
				}
			}
		})
	}
	// Nothing of the refused files was stored, not even their good documents.
	if after := snapshot(); after != before {
		t.Fatalf("the store changed:\nbefore %s\nafter %s", before, after)
	}
}
