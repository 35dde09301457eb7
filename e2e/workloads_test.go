package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", rel)
}

type podList struct {
	Items []corev1.Pod `json:"items"`
}

func getPods(c *harness.Cluster, a *harness.Agent, args ...string) (podList, error) {
	r := c.CLI(a, nil, append([]string{"get", "pods", "-o", "json", "--timeout", "5s"}, args...)...)
	var l podList
	if r.Code != 0 {
		return l, fmt.Errorf("get pods: %s", strings.TrimSpace(r.Stderr))
	}
	return l, json.Unmarshal([]byte(r.Stdout), &l)
}

func isReady(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyByNode counts Ready pods per node, and all non-terminal pods.
func readyByNode(l podList) (map[string]int, int) {
	byNode := map[string]int{}
	live := 0
	for _, p := range l.Items {
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		live++
		if isReady(p) {
			byNode[p.Spec.NodeName]++
		}
	}
	return byNode, live
}

func describePods(l podList) string {
	var parts []string
	for _, p := range l.Items {
		parts = append(parts, fmt.Sprintf("%s@%s:%s/ready=%v", p.Name, p.Spec.NodeName, p.Status.Phase, isReady(p)))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// waitReady waits for exactly want Ready pods (and no other live pods) and
// returns them per node.
func waitReady(t *testing.T, c *harness.Cluster, a *harness.Agent, want int, d time.Duration, extra ...string) map[string]int {
	t.Helper()
	var got map[string]int
	waitfor.Cond(t, d, fmt.Sprintf("%d Ready pods", want), func() (bool, string) {
		l, err := getPods(c, a, extra...)
		if err != nil {
			return false, err.Error()
		}
		byNode, live := readyByNode(l)
		n := 0
		for _, v := range byNode {
			n += v
		}
		got = byNode
		return n == want && live == want, describePods(l)
	})
	return got
}

// TestDeploymentSpreadsScalesAndHeals covers workload acceptance 1 and 2.
func TestDeploymentSpreadsScalesAndHeals(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 3, harness.Options{ExtraArgs: []string{"--pod-eviction-timeout", "4s", "--restart-backoff", "1s"}})
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 0)
	a := c.Agents[0]
	c.MustCLI(a, "apply", "-f", repoFile(t, "examples/web.yaml"))

	t.Run("six replicas Ready, spread 2-2-2", func(t *testing.T) {
		byNode := waitReady(t, c, a, 6, 60*time.Second)
		for _, n := range c.Agents {
			if byNode[n.Name] != 2 {
				t.Fatalf("spread %v, want 2 on each node", byNode)
			}
		}
	})
	t.Run("scale to 9 and back to 3", func(t *testing.T) {
		c.MustCLI(c.Agents[1], "scale", "deployment", "web", "--replicas", "9")
		byNode := waitReady(t, c, a, 9, 60*time.Second)
		for _, n := range c.Agents {
			if byNode[n.Name] != 3 {
				t.Fatalf("spread %v, want 3 on each node", byNode)
			}
		}
		c.MustCLI(c.Agents[2], "scale", "deployment", "web", "--replicas", "3")
		waitReady(t, c, a, 3, 60*time.Second)
		waitfor.Cond(t, 30*time.Second, "3 testapp processes", func() (bool, string) {
			n := harness.CountUnder(c.Dir(), "serve")
			return n == 3, fmt.Sprintf("%d processes", n)
		})
		c.MustCLI(a, "scale", "deployment", "web", "--replicas", "6")
		waitReady(t, c, a, 6, 60*time.Second)
	})
	t.Run("a killed agent's pods are replaced, and not duplicated on its return", func(t *testing.T) {
		victim := c.Agents[2]
		c.Kill(victim)
		waitfor.Cond(t, 30*time.Second, victim.Name+" NotReady", func() (bool, string) {
			r := c.CLI(a, nil, "get", "node", victim.Name)
			return strings.Contains(r.Stdout, "NotReady"), r.Stdout + r.Stderr
		})
		// Six Ready pods, none of them on the dead node: its pods stop
		// counting as Ready at once and are replaced after the eviction
		// timeout.
		waitfor.Cond(t, 60*time.Second, "6 Ready pods on the survivors", func() (bool, string) {
			l, err := getPods(c, a)
			if err != nil {
				return false, err.Error()
			}
			byNode, live := readyByNode(l)
			return byNode[victim.Name] == 0 && byNode[c.Agents[0].Name]+byNode[c.Agents[1].Name] == 6 && live == 6, describePods(l)
		})
		c.Start(victim)
		waitfor.Cond(t, 30*time.Second, victim.Name+" Ready again", func() (bool, string) {
			r := c.CLI(a, nil, "get", "node", victim.Name)
			return strings.Contains(r.Stdout, " Ready"), r.Stdout + r.Stderr
		})
		// Its stale pods are stopped: six pods, six processes.
		waitReady(t, c, a, 6, 30*time.Second)
		waitfor.Cond(t, 30*time.Second, "exactly 6 testapp processes", func() (bool, string) {
			n := harness.CountUnder(c.Dir(), "serve")
			return n == 6, fmt.Sprintf("%d processes", n)
		})
	})
	t.Run("deleting the deployment removes its replica sets, pods and processes", func(t *testing.T) {
		c.MustCLI(a, "delete", "deployment", "web")
		waitfor.Cond(t, 30*time.Second, "no pods, no replica sets, no processes", func() (bool, string) {
			pods := c.CLI(a, nil, "get", "pods", "-o", "name")
			sets := c.CLI(a, nil, "get", "replicasets", "-o", "name")
			n := harness.CountUnder(c.Dir(), "serve")
			return pods.Stdout == "" && sets.Stdout == "" && n == 0, fmt.Sprintf("pods %q sets %q processes %d", pods.Stdout, sets.Stdout, n)
		})
	})
}

func writeManifest(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func getPod(t *testing.T, c *harness.Cluster, a *harness.Agent, name string) (corev1.Pod, error) {
	t.Helper()
	r := c.CLI(a, nil, "get", "pod", name, "-o", "json", "--timeout", "5s")
	var p corev1.Pod
	if r.Code != 0 {
		return p, fmt.Errorf("get pod %s: %s", name, strings.TrimSpace(r.Stderr))
	}
	return p, json.Unmarshal([]byte(r.Stdout), &p)
}

func podDoc(name, restart, command string, extra string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 3
  containers:
    - name: app
      image: shoal-testapp
      command: %s
%s`, name, restart, command, extra)
}

// TestRestartPolicyProbesLogsExec covers workload acceptance 3 and 6.
func TestRestartPolicyProbesLogsExec(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 1, harness.Options{ExtraArgs: []string{"--restart-backoff", "1s"}})
	c.StartAll()
	c.WaitFormed(60*time.Second, 1, 0)
	a := c.Agents[0]
	docs := strings.Join([]string{
		podDoc("live", "Always", `["shoal-testapp", "serve", "--port", "0"]`, `      livenessProbe:
        exec:
          command: ["shoal-testapp", "check", "/healthz"]
        periodSeconds: 1
        failureThreshold: 2`),
		podDoc("onfailure", "OnFailure", `["shoal-testapp", "crash-after", "1s", "--code", "1"]`, ""),
		podDoc("never", "Never", `["shoal-testapp", "crash-after", "1s", "--code", "1"]`, ""),
		podDoc("done", "OnFailure", `["shoal-testapp", "crash-after", "1s", "--code", "0"]`, ""),
	}, "\n---\n")
	c.MustCLI(a, "apply", "-f", writeManifest(t, "pods.yaml", docs))

	restarts := func(p corev1.Pod) int32 {
		if len(p.Status.ContainerStatuses) == 0 {
			return -1
		}
		return p.Status.ContainerStatuses[0].RestartCount
	}
	t.Run("exit 1 under OnFailure restarts with back-off", func(t *testing.T) {
		waitfor.Cond(t, 60*time.Second, "onfailure restarted twice", func() (bool, string) {
			p, err := getPod(t, c, a, "onfailure")
			if err != nil {
				return false, err.Error()
			}
			return restarts(p) >= 2, fmt.Sprintf("%+v", p.Status.ContainerStatuses)
		})
		p, _ := getPod(t, c, a, "onfailure")
		last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
		if last == nil || last.ExitCode != 1 || last.Reason != "Error" {
			t.Fatalf("lastState %+v, want exit 1 Error", last)
		}
	})
	t.Run("exit 1 under Never stays Failed", func(t *testing.T) {
		waitfor.Cond(t, 30*time.Second, "never Failed", func() (bool, string) {
			p, err := getPod(t, c, a, "never")
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == corev1.PodFailed && restarts(p) == 0, fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses)
		})
	})
	t.Run("exit 0 under OnFailure ends Succeeded", func(t *testing.T) {
		waitfor.Cond(t, 30*time.Second, "done Succeeded", func() (bool, string) {
			p, err := getPod(t, c, a, "done")
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == corev1.PodSucceeded && restarts(p) == 0, fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses)
		})
	})
	t.Run("a failing liveness probe restarts the container", func(t *testing.T) {
		waitfor.Cond(t, 30*time.Second, "live Running", func() (bool, string) {
			p, err := getPod(t, c, a, "live")
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == corev1.PodRunning && restarts(p) == 0, fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses)
		})
		r := c.CLI(a, nil, "exec", "live", "--", "shoal-testapp", "set", "/healthz", "fail")
		if r.Code != 0 {
			t.Fatalf("exec: %d %s", r.Code, r.Stderr)
		}
		waitfor.Cond(t, 30*time.Second, "live restarted after its liveness probe failed", func() (bool, string) {
			p, err := getPod(t, c, a, "live")
			if err != nil {
				return false, err.Error()
			}
			if restarts(p) < 1 {
				return false, fmt.Sprintf("%+v", p.Status.ContainerStatuses)
			}
			last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
			return last != nil && strings.Contains(last.Message, "liveness probe failed"), fmt.Sprintf("%+v", last)
		})
		// describe tells the story in events.
		waitfor.Cond(t, 10*time.Second, "describe to show the probe failure and the restart", func() (bool, string) {
			out := c.CLI(a, nil, "describe", "pod", "live").Stdout
			return strings.Contains(out, "Scheduled") && strings.Contains(out, "Unhealthy") &&
				strings.Contains(out, "Liveness probe failed") && strings.Count(out, "Started container app") >= 2, out
		})
	})
	t.Run("exec returns the command's exit code", func(t *testing.T) {
		r := c.CLI(a, nil, "exec", "live", "--", "sh", "-c", "echo in-$POD_NAME; exit 3")
		if r.Code != 3 {
			t.Fatalf("exit %d, want 3 (stderr %q)", r.Code, r.Stderr)
		}
		r = c.CLI(a, nil, "exec", "live", "--", "shoal-testapp", "print", "hello")
		if r.Code != 0 || !strings.Contains(r.Stdout, "hello") {
			t.Fatalf("exec print: %d %q %q", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("logs follow across a restart, previous shows the old attempt", func(t *testing.T) {
		prev := c.CLI(a, nil, "logs", "onfailure", "--previous")
		if prev.Code != 0 || !strings.Contains(prev.Stdout, "1") {
			t.Fatalf("logs --previous: %d %q %q", prev.Code, prev.Stdout, prev.Stderr)
		}
		p, _ := getPod(t, c, a, "onfailure")
		before := restarts(p)
		bin, _ := harness.Binary()
		f := startFollow(t, bin, a.GRPC(), "onfailure")
		// Two more attempts print their lines into the same stream.
		waitfor.Cond(t, 60*time.Second, "logs -f to span two more restarts", func() (bool, string) {
			p, err := getPod(t, c, a, "onfailure")
			if err != nil {
				return false, err.Error()
			}
			return restarts(p) >= before+2, fmt.Sprintf("restarts %d", restarts(p))
		})
		out := f.stop()
		if strings.Count(out, "exiting with code 1") < 2 {
			t.Fatalf("logs -f saw %d attempts end, want at least 2:\n%s", strings.Count(out, "exiting with code 1"), out)
		}
	})
}
