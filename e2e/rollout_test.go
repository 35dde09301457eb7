package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// rolloutDeployment is a Deployment of the test app whose pods are Ready
// once `check PATH` answers (/ready does at once; any other path 404s).
// strategy and extra are indented spec lines.
func rolloutDeployment(name string, replicas int, strategy, image, readyPath, extra string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
%[3]s%[6]s  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: app
          image: %[4]s
          command: ["shoal-testapp", "serve", "--port", "0"]
          readinessProbe:
            exec:
              command: ["shoal-testapp", "check", "%[5]s"]
            periodSeconds: 1
`, name, replicas, strategy, image, readyPath, extra)
}

const surgeOne = "  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n"

func getDeployment(c *harness.Cluster, a *harness.Agent, name string) (appsv1.Deployment, error) {
	r := c.CLI(a, nil, "get", "deployment", name, "-o", "json", "--timeout", "5s")
	var d appsv1.Deployment
	if r.Code != 0 {
		return d, fmt.Errorf("get deployment %s: %s", name, strings.TrimSpace(r.Stderr))
	}
	return d, json.Unmarshal([]byte(r.Stdout), &d)
}

// sampler polls `get pods -o json` about every 200 ms while a rollout runs
// and checks every sample.
type sampler struct {
	stop, done chan struct{}

	mu         sync.Mutex
	samples    int
	minReady   int
	maxLive    int
	violations []string
}

// sample checks one list of pods; it returns a description of what is wrong
// with it, or "".
type sampleCheck func(l podList) string

func startSampler(c *harness.Cluster, a *harness.Agent, selector string, check sampleCheck) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{}), minReady: math.MaxInt}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if l, err := getPods(c, a, "-l", selector); err == nil {
				byNode, live := readyByNode(l)
				ready := 0
				for _, n := range byNode {
					ready += n
				}
				s.mu.Lock()
				s.samples++
				s.minReady, s.maxLive = min(s.minReady, ready), max(s.maxLive, live)
				if v := check(l); v != "" && len(s.violations) < 5 {
					s.violations = append(s.violations, v)
				}
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops the sampler and fails t on any violation seen.
func (s *sampler) finish(t *testing.T, what string) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("%s: %d samples, at least %d Ready, at most %d non-terminated pods", what, s.samples, s.minReady, s.maxLive)
	if s.samples == 0 {
		t.Errorf("%s: no sample taken", what)
	}
	for _, v := range s.violations {
		t.Errorf("%s: %s", what, v)
	}
}

// bounds is a sampleCheck: at least minReady Ready pods, at most maxLive
// pods not terminated.
func bounds(minReady, maxLive int) sampleCheck {
	return func(l podList) string {
		byNode, live := readyByNode(l)
		ready := 0
		for _, n := range byNode {
			ready += n
		}
		if ready < minReady || live > maxLive {
			return fmt.Sprintf("%d Ready (want >= %d), %d live (want <= %d): %s", ready, minReady, live, maxLive, describePods(l))
		}
		return ""
	}
}

// imagesOf counts the live pods per image.
func imagesOf(l podList) map[string]int {
	out := map[string]int{}
	for _, p := range l.Items {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

// podWatch follows `get pods -w` (the table form, which names each change
// added, modified or deleted) and keeps every pod's STATUS column, calling
// check on the pods after each change: unlike a sampler it sees every state
// the store went through.
type podWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	pods       map[string]string // name: READY and STATUS, as "1/1 Running"
	armed      bool              // check runs once the initial list is in
	changes    int
	minReady   int // over the armed changes
	maxLive    int
	violations []string
}

func watchPods(t *testing.T, c *harness.Cluster, a *harness.Agent, selector string, check func(pods map[string]string) string) *podWatch {
	t.Helper()
	bin, err := harness.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, bin, "--server", a.GRPC(), "get", "pods", "-l", selector, "-w")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &podWatch{cancel: cancel, done: make(chan struct{}), pods: map[string]string{}, minReady: math.MaxInt}
	go func() {
		defer close(w.done)
		defer func() { _ = cmd.Wait() }()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			typ, row, isEvent := strings.Cut(sc.Text(), "\t")
			if !isEvent {
				typ, row = "added", sc.Text() // the initial list
			}
			f := strings.Fields(row)
			if len(f) < 3 || f[0] == "NAME" {
				continue
			}
			w.mu.Lock()
			if typ == "deleted" {
				delete(w.pods, f[0])
			} else {
				w.pods[f[0]] = f[1] + " " + f[2]
			}
			w.changes++
			if w.armed {
				ready, live := readyLive(w.pods)
				w.minReady, w.maxLive = min(w.minReady, ready), max(w.maxLive, live)
			}
			if v := check(w.pods); w.armed && v != "" && len(w.violations) < 5 {
				w.violations = append(w.violations, v)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// until waits for the watched pods to satisfy cond.
func (w *podWatch) until(t *testing.T, d time.Duration, what string, cond func(pods map[string]string) bool) {
	t.Helper()
	waitfor.Cond(t, d, what, func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return cond(w.pods), fmt.Sprint(w.pods)
	})
}

// arm waits for the watch to list the pods as cond wants them, then starts
// checking every change.
func (w *podWatch) arm(t *testing.T, what string, cond func(pods map[string]string) bool) {
	t.Helper()
	w.until(t, 10*time.Second, what, cond)
	w.mu.Lock()
	w.armed = true
	w.mu.Unlock()
}

// readyLive counts the watched pods that are Running and ready, and all.
func readyLive(pods map[string]string) (ready, live int) {
	for _, st := range pods {
		if st == "1/1 Running" {
			ready++
		}
	}
	return ready, len(pods)
}

// watchBounds is a podWatch check: at least minReady Ready pods, at most
// maxLive pods.
func watchBounds(minReady, maxLive int) func(map[string]string) string {
	return func(pods map[string]string) string {
		if ready, live := readyLive(pods); ready < minReady || live > maxLive {
			return fmt.Sprintf("%d Ready (want >= %d), %d pods (want <= %d): %v", ready, minReady, live, maxLive, pods)
		}
		return ""
	}
}

// finish stops the watch and fails t on any violation seen.
func (w *podWatch) finish(t *testing.T, what string) {
	t.Helper()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%s: %d pod changes watched, at least %d Ready, at most %d pods", what, w.changes, w.minReady, w.maxLive)
	for _, v := range w.violations {
		t.Errorf("%s: %s", what, v)
	}
}

// historyRevisions is the REVISION column of rollout history.
func historyRevisions(out string) []string {
	var revs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[2:] {
		revs = append(revs, strings.Fields(line)[0])
	}
	return revs
}

// TestRollout covers the rollouts issue: rolling updates within maxSurge and
// maxUnavailable, rollout status, history and undo, the progress deadline,
// Recreate, pause and resume, and bad input, on one agent of the process
// runtime, driven through the CLI.
func TestRollout(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 1, harness.Options{BootstrapExpect: 1})
	c.StartAll()
	c.WaitFormed(30*time.Second, 1, 0)
	a := c.Agents[0]

	roll := writeManifest(t, "roll.yaml", rolloutDeployment("roll", 6, surgeOne, "shoal-testapp:1", "/ready", "  minReadySeconds: 1\n"))
	c.MustCLI(a, "apply", "-f", roll)
	out := c.MustCLI(a, "rollout", "status", "deployment/roll", "--timeout", "90s")
	if !strings.HasSuffix(out, "deployment \"roll\" successfully rolled out\n") {
		t.Fatalf("rollout status printed %q", out)
	}
	waitReady(t, c, a, 6, 30*time.Second, "-l", "app=roll")

	t.Run("bad input is refused and changes nothing", func(t *testing.T) {
		bad := writeManifest(t, "zero.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: zero-cm}\ndata: {a: b}\n---\n"+
			rolloutDeployment("zero", 2, "  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: 0}\n", "shoal-testapp:1", "/ready", ""))
		r := c.CLI(a, nil, "apply", "-f", bad)
		if r.Code == 0 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Fatalf("apply: exit %d, stderr %q; want one error line", r.Code, r.Stderr)
		}
		for _, want := range []string{"zero.yaml", "document 2", "spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when maxSurge is 0"} {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("apply: stderr %q lacks %q", r.Stderr, want)
			}
		}
		for _, kind := range []string{"deployment/zero", "configmap/zero-cm"} {
			if r := c.CLI(a, nil, "get", kind); r.Code == 0 || !strings.Contains(r.Stderr, "not found") {
				t.Errorf("get %s after a refused apply: exit %d, %q %q", kind, r.Code, r.Stdout, r.Stderr)
			}
		}

		before, err := getDeployment(c, a, "roll")
		if err != nil {
			t.Fatal(err)
		}
		r = c.CLI(a, nil, "set", "image", "deployment/roll", "app=shoal-testapp:9", "nosuch=shoal-testapp:9")
		if r.Code == 0 || r.Stderr != "error: set image: deployment \"roll\" has no container named \"nosuch\" (its containers: app)\n" {
			t.Errorf("set image of a missing container: exit %d, stderr %q", r.Code, r.Stderr)
		}
		after, err := getDeployment(c, a, "roll")
		if err != nil {
			t.Fatal(err)
		}
		if after.ResourceVersion != before.ResourceVersion || after.Generation != before.Generation {
			t.Errorf("deployment changed: resourceVersion %s -> %s, generation %d -> %d",
				before.ResourceVersion, after.ResourceVersion, before.Generation, after.Generation)
		}
	})

	t.Run("rolling update within maxSurge 1 and maxUnavailable 0, history, undo", func(t *testing.T) {
		w := watchPods(t, c, a, "app=roll", watchBounds(6, 7))
		w.arm(t, "the watch listing 6 Ready pods", func(pods map[string]string) bool {
			ready, live := readyLive(pods)
			return ready == 6 && live == 6
		})
		s := startSampler(c, a, "app=roll", bounds(6, 7))
		c.MustCLI(a, "set", "image", "deployment/roll", "app=shoal-testapp:2")
		out := c.MustCLI(a, "rollout", "status", "deployment/roll", "--timeout", "120s")
		s.finish(t, "rollout to shoal-testapp:2, sampled")
		if !strings.HasSuffix(out, "deployment \"roll\" successfully rolled out\n") || !strings.Contains(out, "Waiting for deployment \"roll\" rollout to finish") {
			t.Errorf("rollout status printed %q", out)
		}
		l, err := getPods(c, a, "-l", "app=roll")
		if err != nil {
			t.Fatal(err)
		}
		if imgs := imagesOf(l); imgs["shoal-testapp:2"] != 6 || len(imgs) != 1 {
			t.Fatalf("pods run %v, want 6 of shoal-testapp:2", imgs)
		}

		hist := c.MustCLI(a, "rollout", "history", "deployment/roll")
		t.Logf("rollout history:\n%s", hist)
		if revs := historyRevisions(hist); strings.Join(revs, ",") != "1,2" || !strings.HasPrefix(hist, "deployment.apps/roll\nREVISION") ||
			!strings.Contains(hist, "shoal set image deployment/roll app=shoal-testapp:2") {
			t.Errorf("history %q: want revisions 1 and 2, the second with its change-cause", hist)
		}
		if rev1 := c.MustCLI(a, "rollout", "history", "deployment/roll", "--revision", "1"); !strings.Contains(rev1, "Image:") ||
			!strings.Contains(rev1, "shoal-testapp:1") {
			t.Errorf("history --revision 1: %q", rev1)
		}

		s = startSampler(c, a, "app=roll", bounds(6, 7))
		if out := c.MustCLI(a, "rollout", "undo", "deployment", "roll", "--to-revision", "1"); out != "deployment.apps/roll rolled back\n" {
			t.Errorf("undo printed %q", out)
		}
		c.MustCLI(a, "rollout", "status", "deployment/roll", "--timeout", "120s")
		s.finish(t, "rollback to revision 1, sampled")
		w.until(t, 10*time.Second, "the watch listing 6 Ready pods", func(pods map[string]string) bool {
			ready, live := readyLive(pods)
			return ready == 6 && live == 6
		})
		w.finish(t, "rollout to shoal-testapp:2 and back, watched")
		if w.maxLive != 7 || w.minReady != 6 {
			t.Errorf("the watch saw at most %d pods and at least %d Ready: want the surge of 1 used and 6 Ready kept", w.maxLive, w.minReady)
		}
		l, err = getPods(c, a, "-l", "app=roll")
		if err != nil {
			t.Fatal(err)
		}
		if imgs := imagesOf(l); imgs["shoal-testapp:1"] != 6 || len(imgs) != 1 {
			t.Fatalf("pods run %v after undo, want 6 of shoal-testapp:1", imgs)
		}
		hist = c.MustCLI(a, "rollout", "history", "deployment/roll")
		if revs := historyRevisions(hist); strings.Join(revs, ",") != "2,3" {
			t.Errorf("history after undo %q: want revisions 2 and 3 (revision 1 is current again as 3)", hist)
		}
		d, err := getDeployment(c, a, "roll")
		if err != nil {
			t.Fatal(err)
		}
		if d.Annotations["deployment.kubernetes.io/revision"] != "3" {
			t.Errorf("deployment annotations %v: want revision 3", d.Annotations)
		}
	})

	t.Run("a rollout that never gets ready exceeds its deadline; undo recovers", func(t *testing.T) {
		stuck := writeManifest(t, "stuck.yaml", rolloutDeployment("roll", 6, surgeOne, "shoal-testapp:1", "/nope", "  minReadySeconds: 1\n  progressDeadlineSeconds: 10\n"))
		s := startSampler(c, a, "app=roll", bounds(6, 7))
		c.MustCLI(a, "apply", "-f", stuck)
		r := c.CLI(a, nil, "rollout", "status", "deployment/roll", "--timeout", "90s")
		s.finish(t, "stuck rollout")
		if r.Code == 0 || !strings.Contains(r.Stderr, "ProgressDeadlineExceeded") || !strings.Contains(r.Stderr, "exceeded its progress deadline") {
			t.Fatalf("rollout status: exit %d, stderr %q; want the progress deadline", r.Code, r.Stderr)
		}
		l, err := getPods(c, a, "-l", "app=roll")
		if err != nil {
			t.Fatal(err)
		}
		oldReady := 0
		for _, p := range l.Items {
			if isReady(p) && p.Spec.Containers[0].ReadinessProbe.Exec.Command[2] == "/ready" {
				oldReady++
			}
		}
		if oldReady != 6 {
			t.Errorf("%d old pods Ready, want 6: %s", oldReady, describePods(l))
		}
		s = startSampler(c, a, "app=roll", bounds(6, 7))
		c.MustCLI(a, "rollout", "undo", "deployment/roll")
		c.MustCLI(a, "rollout", "status", "deployment/roll", "--timeout", "60s")
		s.finish(t, "undo of the stuck rollout")
		waitReady(t, c, a, 6, 30*time.Second, "-l", "app=roll")
		c.MustCLI(a, "delete", "deployment", "roll")
	})

	t.Run("Recreate never runs old and new pods together", func(t *testing.T) {
		c.MustCLI(a, "apply", "-f", writeManifest(t, "recreate.yaml",
			rolloutDeployment("recreate", 3, "  strategy: {type: Recreate}\n", "shoal-testapp:1", "/ready", "")))
		c.MustCLI(a, "rollout", "status", "deployment/recreate", "--timeout", "60s")
		// Pods are named after their ReplicaSet, so the old set's name tells
		// old pods from new ones in the watch.
		oldSet := strings.TrimPrefix(strings.TrimSpace(c.MustCLI(a, "get", "replicasets", "-l", "app=recreate", "-o", "name")), "replicaset/")
		if oldSet == "" || strings.Contains(oldSet, "\n") {
			t.Fatalf("want one replica set, got %q", oldSet)
		}
		running := func(pods map[string]string) (old, cur int) {
			for name, st := range pods {
				switch {
				case !strings.HasSuffix(st, " Running"):
				case strings.HasPrefix(name, oldSet+"-"):
					old++
				default:
					cur++
				}
			}
			return old, cur
		}
		w := watchPods(t, c, a, "app=recreate", func(pods map[string]string) string {
			if old, cur := running(pods); old > 0 && cur > 0 {
				return fmt.Sprintf("%d old and %d new pods Running together: %v", old, cur, pods)
			}
			return ""
		})
		w.arm(t, "the watch listing the 3 old pods", func(pods map[string]string) bool {
			old, _ := running(pods)
			return old == 3
		})
		s := startSampler(c, a, "app=recreate", func(l podList) string {
			running := map[string]int{}
			for _, p := range l.Items {
				if p.Status.Phase == corev1.PodRunning {
					running[p.Spec.Containers[0].Image]++
				}
			}
			if running["shoal-testapp:1"] > 0 && running["shoal-testapp:2"] > 0 {
				return "old and new pods Running together: " + describePods(l)
			}
			return ""
		})
		c.MustCLI(a, "set", "image", "deployment/recreate", "app=shoal-testapp:2")
		c.MustCLI(a, "rollout", "status", "deployment/recreate", "--timeout", "60s")
		s.finish(t, "Recreate rollout, sampled")
		w.until(t, 10*time.Second, "the watch listing 3 new pods and no old one", func(pods map[string]string) bool {
			old, cur := running(pods)
			return old == 0 && cur == 3 && len(pods) == 3
		})
		w.finish(t, "Recreate rollout, watched")
		l, err := getPods(c, a, "-l", "app=recreate")
		if err != nil {
			t.Fatal(err)
		}
		if imgs := imagesOf(l); imgs["shoal-testapp:2"] != 3 || len(imgs) != 1 {
			t.Fatalf("pods run %v, want 3 of shoal-testapp:2", imgs)
		}
		c.MustCLI(a, "delete", "deployment", "recreate")
	})

	t.Run("pause stops a rollout midway, resume finishes it", func(t *testing.T) {
		c.MustCLI(a, "apply", "-f", writeManifest(t, "pause.yaml",
			rolloutDeployment("pause", 6, surgeOne, "shoal-testapp:1", "/ready", "  minReadySeconds: 2\n")))
		c.MustCLI(a, "rollout", "status", "deployment/pause", "--timeout", "90s")
		c.MustCLI(a, "set", "image", "deployment/pause", "app=shoal-testapp:2")
		waitfor.Cond(t, 30*time.Second, "a first updated replica", func() (bool, string) {
			d, err := getDeployment(c, a, "pause")
			if err != nil {
				return false, err.Error()
			}
			return d.Status.UpdatedReplicas >= 1, fmt.Sprintf("%+v", d.Status)
		})
		if out := c.MustCLI(a, "rollout", "pause", "deployment/pause"); out != "deployment.apps/pause paused\n" {
			t.Errorf("pause printed %q", out)
		}
		var d appsv1.Deployment
		waitfor.Cond(t, 10*time.Second, "the pause observed", func() (bool, string) {
			var err error
			d, err = getDeployment(c, a, "pause")
			if err != nil {
				return false, err.Error()
			}
			for _, cond := range d.Status.Conditions {
				if cond.Type == appsv1.DeploymentProgressing && cond.Reason == "DeploymentPaused" && d.Status.ObservedGeneration == d.Generation {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", d.Status)
		})
		// Watch it stay where it is for a few seconds: the new set keeps its
		// size and not every replica is updated.
		newSet := func() (string, error) {
			r := c.CLI(a, nil, "get", "replicasets", "-l", "app=pause", "-o", "json", "--timeout", "5s")
			if r.Code != 0 {
				return "", fmt.Errorf("get replicasets: %s", r.Stderr)
			}
			var l struct {
				Items []appsv1.ReplicaSet `json:"items"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &l); err != nil {
				return "", err
			}
			var parts []string
			for _, rs := range l.Items {
				parts = append(parts, fmt.Sprintf("%s=%d", rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas))
			}
			return strings.Join(parts, " "), nil
		}
		before, err := newSet()
		if err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
			got, err := newSet()
			if err != nil {
				t.Fatal(err)
			}
			d, err := getDeployment(c, a, "pause")
			if err != nil {
				t.Fatal(err)
			}
			if got != before || d.Status.UpdatedReplicas >= 6 {
				t.Fatalf("paused, yet sets went from %s to %s with %d updated", before, got, d.Status.UpdatedReplicas)
			}
		}
		t.Logf("paused at %s with %d of 6 updated", before, d.Status.UpdatedReplicas)
		if out := c.MustCLI(a, "rollout", "resume", "deployment/pause"); out != "deployment.apps/pause resumed\n" {
			t.Errorf("resume printed %q", out)
		}
		c.MustCLI(a, "rollout", "status", "deployment/pause", "--timeout", "120s")
		l, err := getPods(c, a, "-l", "app=pause")
		if err != nil {
			t.Fatal(err)
		}
		if imgs := imagesOf(l); imgs["shoal-testapp:2"] != 6 || len(imgs) != 1 {
			t.Fatalf("pods run %v, want 6 of shoal-testapp:2", imgs)
		}
	})
}
