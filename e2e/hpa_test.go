package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// hpaDoc is a HorizontalPodAutoscaler named h with scaleTargetRef target
// (a YAML flow mapping) and the rest of its spec.
func hpaDoc(target, rest string) string {
	return "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  scaleTargetRef: " + target + "\n" + rest
}

// loadManifest is a Deployment of one testapp server requesting 100m whose
// load is switched with `shoal-testapp set /burn on|off` (300m when on),
// and an HPA keeping it at 50 % of its request with 1 to 4 replicas and a
// 10 s scale-down window.
const loadManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: load
spec:
  replicas: 1
  selector:
    matchLabels: {app: load}
  template:
    metadata:
      labels: {app: load}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
        - name: app
          image: shoal-testapp
          command: ["shoal-testapp", "serve", "--port", "0"]
          env: [{name: BURN_MILLICORES, value: "300"}]
          resources:
            requests: {cpu: 100m}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: load
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: load}
  minReplicas: 1
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 50}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 10
`

// scaleDownWindow is the manifest's stabilizationWindowSeconds.
const scaleDownWindow = 10 * time.Second

func getHPA(c *harness.Cluster, a *harness.Agent, name string) (autoscalingv2.HorizontalPodAutoscaler, error) {
	var h autoscalingv2.HorizontalPodAutoscaler
	r := c.CLI(a, nil, "get", "hpa", name, "-o", "json", "--timeout", "5s")
	if r.Code != 0 {
		return h, fmt.Errorf("get hpa %s: %s", name, strings.TrimSpace(r.Stderr))
	}
	return h, json.Unmarshal([]byte(r.Stdout), &h)
}

func deploymentReplicas(c *harness.Cluster, a *harness.Agent, name string) (int32, error) {
	r := c.CLI(a, nil, "get", "deployment", name, "-o", "json", "--timeout", "5s")
	if r.Code != 0 {
		return 0, fmt.Errorf("get deployment %s: %s", name, strings.TrimSpace(r.Stderr))
	}
	var d appsv1.Deployment
	if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
		return 0, err
	}
	if d.Spec.Replicas == nil {
		return 1, nil
	}
	return *d.Spec.Replicas, nil
}

// TestHPAScalesOnCPU covers the autoscaling acceptance: an HPA naming a
// missing target says so and changes nothing; a CPU load on a Deployment
// with a 50 % target scales it up within a minute, `get hpa` shows the
// utilization, and after the load stops and the (10 s) scale-down window
// passes it is back at one replica.
func TestHPAScalesOnCPU(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 3, harness.Options{ExtraArgs: []string{"--hpa-sync-period", "2s", "--stats-interval", "1s"}})
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 0)
	a := c.Agents[0]

	t.Run("a missing target is reported and nothing changes", func(t *testing.T) {
		kinds := []string{"deployments", "replicasets", "pods"}
		snapshot := func() string {
			var out []string
			for _, k := range kinds {
				out = append(out, c.MustCLI(a, "get", k, "-A", "-o", "name"))
			}
			return strings.Join(out, "|")
		}
		before := snapshot()
		c.MustCLI(a, "apply", "-f", writeManifest(t, "ghost.yaml", hpaDoc("{kind: Deployment, name: nope}", "  maxReplicas: 3\n")))
		waitfor.Cond(t, 30*time.Second, "describe hpa to show FailedGetScale", func() (bool, string) {
			out := c.CLI(c.Agents[1], nil, "describe", "hpa", "h").Stdout
			return regexp.MustCompile(`AbleToScale\s+False\s+FailedGetScale\s+the HPA controller was unable to get the target's current scale: deployments.apps "nope" not found`).MatchString(out) &&
				regexp.MustCompile(`Warning\s+FailedGetScale`).MatchString(out), out
		})
		if got := c.MustCLI(a, "get", "hpa"); !regexp.MustCompile(`h\s+Deployment/nope\s+cpu: <unknown>/80%\s+1\s+3\s+0`).MatchString(got) {
			t.Fatalf("get hpa:\n%s", got)
		}
		// shoal autoscale, as kubectl, refuses a target that does not exist.
		r := c.CLI(a, nil, "autoscale", "deployment", "nope", "--max", "3")
		if r.Code == 0 || !strings.Contains(r.Stderr, `deployments.apps "nope" not found`) {
			t.Fatalf("autoscale of a missing deployment: exit %d, stderr %q", r.Code, r.Stderr)
		}
		if after := snapshot(); after != before {
			t.Fatalf("the HPA changed the store:\nbefore %s\nafter  %s", before, after)
		}
		c.MustCLI(a, "delete", "hpa", "h")
	})

	c.MustCLI(a, "apply", "-f", writeManifest(t, "load.yaml", loadManifest))
	waitReady(t, c, a, 1, 60*time.Second, "-l", "app=load")
	l, err := getPods(c, a, "-l", "app=load")
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("load pods: %v %v", l.Items, err)
	}
	burner := l.Items[0].Name
	utilization := regexp.MustCompile(`load\s+Deployment/load\s+cpu: (\d+)%/50%\s+1\s+4\s+(\d+)`)

	t.Run("get hpa shows the utilization of the idle pod", func(t *testing.T) {
		waitfor.Cond(t, 30*time.Second, "a utilization figure in get hpa", func() (bool, string) {
			out := c.CLI(a, nil, "get", "hpa").Stdout
			return utilization.MatchString(out), out
		})
		if n, err := deploymentReplicas(c, a, "load"); err != nil || n != 1 {
			t.Fatalf("idle: %d replicas (%v), want 1", n, err)
		}
	})

	t.Run("a CPU load scales it up within a minute", func(t *testing.T) {
		c.MustCLI(a, "exec", burner, "--", "shoal-testapp", "set", "/burn", "on")
		start := time.Now()
		waitfor.Cond(t, 60*time.Second, "the deployment to scale up", func() (bool, string) {
			n, err := deploymentReplicas(c, a, "load")
			if err != nil {
				return false, err.Error()
			}
			return n > 1, fmt.Sprintf("%d replicas; %s", n, c.CLI(a, nil, "get", "hpa").Stdout)
		})
		t.Logf("scaled up %v after the load started", time.Since(start).Round(100*time.Millisecond))
		waitfor.Cond(t, 60*time.Second, "4 replicas, as the HPA's maximum", func() (bool, string) {
			n, err := deploymentReplicas(c, a, "load")
			return err == nil && n == 4, fmt.Sprintf("%d replicas (%v)", n, err)
		})
		t.Logf("at 4 replicas %v after the load started", time.Since(start).Round(100*time.Millisecond))
		out := c.MustCLI(a, "get", "hpa")
		m := utilization.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("get hpa shows no utilization:\n%s", out)
		}
		t.Logf("get hpa under load:\n%s", out)
		waitReady(t, c, a, 4, 60*time.Second, "-l", "app=load")
	})

	t.Run("without the load it is back at one replica after the window", func(t *testing.T) {
		c.MustCLI(a, "exec", burner, "--", "shoal-testapp", "set", "/burn", "off")
		start := time.Now()
		waitfor.Cond(t, 60*time.Second, "the deployment back at 1 replica", func() (bool, string) {
			n, err := deploymentReplicas(c, a, "load")
			if err != nil {
				return false, err.Error()
			}
			return n == 1, fmt.Sprintf("%d replicas; %s", n, c.CLI(a, nil, "get", "hpa").Stdout)
		})
		took := time.Since(start)
		t.Logf("scaled down %v after the load stopped (window %v)", took.Round(100*time.Millisecond), scaleDownWindow)
		// The last recommendation under load is at most one sync (2 s)
		// older than the switch, and the window holds it for 10 s.
		if took < scaleDownWindow-2*time.Second {
			t.Fatalf("scaled down after %v, before the %v window could pass", took, scaleDownWindow)
		}
		h, err := getHPA(c, a, "load")
		if err != nil {
			t.Fatal(err)
		}
		if h.Status.LastScaleTime == nil || h.Status.DesiredReplicas != 1 {
			t.Fatalf("status %+v", h.Status)
		}
		waitfor.Cond(t, 10*time.Second, "describe to tell both rescales", func() (bool, string) {
			out := c.CLI(a, nil, "describe", "hpa", "load").Stdout
			return strings.Contains(out, "New size: 4; reason: cpu resource utilization (percentage of request) above target") &&
				strings.Contains(out, "New size: 1; reason: All metrics below target"), out
		})
	})

	t.Run("shoal autoscale creates an HPA", func(t *testing.T) {
		c.MustCLI(a, "delete", "hpa", "load")
		if out := c.MustCLI(a, "autoscale", "deployment", "load", "--min", "1", "--max", "2", "--cpu-percent", "60"); out != "horizontalpodautoscaler.autoscaling/load autoscaled\n" {
			t.Fatalf("autoscale printed %q", out)
		}
		h, err := getHPA(c, a, "load")
		if err != nil {
			t.Fatal(err)
		}
		s := h.Spec
		if s.ScaleTargetRef.Kind != "Deployment" || s.ScaleTargetRef.Name != "load" || *s.MinReplicas != 1 || s.MaxReplicas != 2 ||
			len(s.Metrics) != 1 || *s.Metrics[0].Resource.Target.AverageUtilization != 60 {
			t.Fatalf("spec %+v", s)
		}
	})
}
