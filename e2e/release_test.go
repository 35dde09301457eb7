package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// answer is one request of a client running through a release.
type answer struct {
	at      time.Time
	version string
	err     error
}

// runClient sends requests to u on new connections, one after the other,
// until stop is closed, and returns what each got; sent counts them as
// they go.
func runClient(u string, stop <-chan struct{}, sent *atomic.Int64) <-chan []answer {
	out := make(chan []answer, 1)
	go func() {
		var got []answer
		for {
			select {
			case <-stop:
				out <- got
				return
			default:
			}
			r, err := httpGet(u)
			got = append(got, answer{at: time.Now(), version: r.Version, err: err})
			sent.Add(1)
		}
	}()
	return out
}

// syncedEverywhere waits until every agent's cluster DNS and proxy are
// built from revision rev or later, and returns when that was seen.
func syncedEverywhere(t *testing.T, c *harness.Cluster, rev uint64) time.Time {
	t.Helper()
	waitfor.Cond(t, 10*time.Second, fmt.Sprintf("every proxy at revision %d", rev), func() (bool, string) {
		for _, a := range c.Agents {
			v, err := harness.Metric(a, "shoal_services_synced_revision")
			if err != nil || uint64(v) < rev {
				return false, fmt.Sprintf("%s at %v (%v)", a.Name, v, err)
			}
		}
		return true, ""
	})
	return time.Now()
}

// serviceRevision is the service's resourceVersion.
func serviceRevision(t *testing.T, c *harness.Cluster, a *harness.Agent, name string) uint64 {
	t.Helper()
	s := getService(t, c, a, name)
	rv, err := strconv.ParseUint(s.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("service %s resourceVersion %q: %v", name, s.ResourceVersion, err)
	}
	return rv
}

// decodeReply reads a test app's answer.
func decodeReply(resp *http.Response, r *reply) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(r)
}

// TestReleases covers the rollouts issue's acceptance 4 (blue/green by
// switching a service's selector) and 5 (A/B by header next to a weighted
// split) on three agents.
func TestReleases(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 3, harness.Options{ExtraArgs: []string{"--service-cidr", "10.97.2.0/24", "--pod-eviction-timeout", "60s"}})
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 0)
	a := c.Agents[0]
	manifest := appDeployment("bg", "blue", 2, 8180) + appDeployment("bg", "green", 2, 8181) +
		appDeployment("ab", "a", 2, 8182) + appDeployment("ab", "b", 1, 8183) + `apiVersion: v1
kind: Service
metadata: {name: bg, namespace: default}
spec:
  selector: {app: bg, version: blue}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: ab
  namespace: default
  annotations:
    shoal.dev/routes: "header X-Group=beta -> version=b; cookie group=beta -> version=b"
    shoal.dev/weights: "version: a=90, b=10"
spec:
  selector: {app: ab}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
`
	c.MustCLI(a, "apply", "-f", writeManifest(t, "releases.yaml", manifest))
	waitReady(t, c, a, 4, 90*time.Second, "-l", "app=bg")
	waitReady(t, c, a, 3, 90*time.Second, "-l", "app=ab")

	t.Run("blue/green: the selector switch fails no request, then only green answers", func(t *testing.T) {
		u := "http://" + getService(t, c, a, "bg").Spec.ClusterIP + "/"
		syncedEverywhere(t, c, serviceRevision(t, c, a, "bg"))
		waitAnswer(t, u)
		for _, step := range []struct{ from, to string }{{"blue", "green"}, {"green", "blue"}} {
			stop := make(chan struct{})
			var sent atomic.Int64
			done := runClient(u, stop, &sent)
			// Some answers before the switch.
			waitfor.Cond(t, 10*time.Second, "50 requests before the switch", func() (bool, string) {
				return sent.Load() >= 50, fmt.Sprint(sent.Load())
			})
			switchAt := time.Now()
			c.MustCLI(c.Agents[1], "patch", "service", "bg", "--selector", "app=bg,version="+step.to)
			syncedAt := syncedEverywhere(t, c, serviceRevision(t, c, a, "bg"))
			// Then a while of answers after every proxy has switched.
			enough := sent.Load() + 100
			waitfor.Cond(t, 10*time.Second, "100 requests after the switch", func() (bool, string) {
				return sent.Load() >= enough, fmt.Sprint(sent.Load())
			})
			close(stop)
			got := <-done
			var before, after, failed, late int
			for _, r := range got {
				switch {
				case r.err != nil:
					failed++
					t.Errorf("request at %s failed: %v", r.at.Format(time.StampMicro), r.err)
				case r.at.After(syncedAt) && r.version != step.to:
					late++
				case r.at.Before(switchAt):
					before++
				case r.at.After(syncedAt):
					after++
				}
			}
			t.Logf("%s -> %s: %d requests, %d before the switch, %d after every proxy switched (in %v), %d failed, %d old answers after",
				step.from, step.to, len(got), before, after, syncedAt.Sub(switchAt).Round(time.Millisecond), failed, late)
			if failed > 0 || late > 0 || before == 0 || after == 0 {
				t.Fatalf("%s -> %s: %d failed, %d %s answers after the switch, %d before, %d after", step.from, step.to, failed, late, step.from, before, after)
			}
		}
	})

	t.Run("A/B by header and cookie next to a 90/10 split", func(t *testing.T) {
		u := "http://" + getService(t, c, a, "ab").Spec.ClusterIP + "/"
		syncedEverywhere(t, c, serviceRevision(t, c, a, "ab"))
		hc := &http.Client{Timeout: 5 * time.Second}
		var mu sync.Mutex
		byGroup := map[string]map[string]int{}
		send := func(kind string) error {
			req, _ := http.NewRequest("GET", u, nil)
			switch kind {
			case "header":
				req.Header.Set("X-Group", "beta")
			case "cookie":
				req.AddCookie(&http.Cookie{Name: "group", Value: "beta"})
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var r reply
			if err := decodeReply(resp, &r); err != nil {
				return err
			}
			mu.Lock()
			if byGroup[kind] == nil {
				byGroup[kind] = map[string]int{}
			}
			byGroup[kind][r.Version]++
			mu.Unlock()
			return nil
		}
		waitfor.Cond(t, 10*time.Second, "an answer through "+u, func() (bool, string) {
			err := send("probe")
			return err == nil, fmt.Sprint(err)
		})
		for i := range 2000 {
			kind := "none"
			switch i % 4 {
			case 0:
				kind = "header"
			case 1:
				kind = "cookie"
			}
			if err := send(kind); err != nil {
				t.Fatalf("request %d (%s): %v", i, kind, err)
			}
		}
		t.Logf("answers by request kind: %v", byGroup)
		for _, kind := range []string{"header", "cookie"} {
			if got := byGroup[kind]; got["b"] != 500 || len(got) != 1 {
				t.Fatalf("requests with the %s: %v; want all 500 on b", kind, got)
			}
		}
		rest := byGroup["none"]
		share := float64(rest["b"]) / float64(rest["a"]+rest["b"]) * 100
		t.Logf("unmatched requests: b's share %.1f %% (weight 10 %%)", share)
		if rest["a"]+rest["b"] != 1000 || share < 7 || share > 13 {
			t.Fatalf("unmatched requests %v: b's share %.1f %%, want 10 +- 3", rest, share)
		}
	})

	t.Run("a bad routes annotation is refused with its field path", func(t *testing.T) {
		bad := `apiVersion: v1
kind: Service
metadata:
  name: badroutes
  namespace: default
  annotations: {shoal.dev/routes: "header X-Group=beta"}
spec:
  selector: {app: ab}
  ports: [{port: 80}]
`
		r := c.CLI(a, nil, "apply", "-f", writeManifest(t, "badroutes.yaml", bad))
		if r.Code == 0 || !strings.Contains(r.Stderr, "metadata.annotations[shoal.dev/routes]") || !strings.Contains(r.Stderr, "badroutes.yaml") {
			t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
		}
		if r := c.CLI(a, nil, "get", "service", "badroutes"); r.Code == 0 {
			t.Fatal("a refused service was stored")
		}
		r = c.CLI(a, nil, "patch", "service", "bg", "--selector", "app=bg,version=bad value")
		if r.Code == 0 || !strings.Contains(r.Stderr, "--selector") {
			t.Fatalf("patch with a bad selector: exit %d, stderr %q", r.Code, r.Stderr)
		}
	})
}
