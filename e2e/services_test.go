package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// servicesCIDR keeps this test's ClusterIPs apart from other clusters'.
const servicesCIDR = "10.97.0.0/24"

// appDeployment is a Deployment NAME-VERSION of the test app labelled
// app=NAME and version=VERSION, answering its version on port (named
// http), Ready while /ready answers.
func appDeployment(app, version string, replicas, port int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s-%[2]s, namespace: default}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s, version: %[2]s}}
  template:
    metadata: {labels: {app: %[1]s, version: %[2]s}}
    spec:
      containers:
      - name: web
        image: shoal-testapp
        command: ["shoal-testapp", "serve", "--port", "%[4]d", "--version", "%[2]s"]
        ports: [{name: http, containerPort: %[4]d}]
        env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        readinessProbe:
          httpGet: {path: /ready, port: %[4]d}
          periodSeconds: 1
          failureThreshold: 1
---
`, app, version, replicas, port)
}

const servicesManifest = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web, version: v1}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: split
  namespace: default
  annotations: {shoal.dev/weights: "version: v1=90, v2=10"}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8000, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: shoal-testapp
        command: ["shoal-testapp", "echo-udp", "--port", "9053"]
        ports: [{name: dns, containerPort: 9053, protocol: UDP}]
        env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: dns, port: 53, protocol: UDP, targetPort: dns}]
`

// reply is what test-app serve answers on /.
type reply struct {
	Pod     string `json:"pod"`
	Version string `json:"version"`
}

// httpGet makes one request on a new connection.
func httpGet(url string) (reply, error) {
	cl := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get(url)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var r reply
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// spread sends n requests and counts the pods that answered.
func spread(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		r, err := httpGet(url)
		if err != nil {
			t.Fatalf("through the proxy: %v", err)
		}
		got[r.Pod]++
	}
	return got
}

// waitAnswer waits for an answer from u: the proxies open a new service's
// listeners within their refresh after it is written.
func waitAnswer(t *testing.T, u string) reply {
	t.Helper()
	var r reply
	waitfor.Cond(t, 10*time.Second, "an answer from "+u, func() (bool, string) {
		var err error
		r, err = httpGet(u)
		return err == nil, fmt.Sprint(err)
	})
	return r
}

func getService(t *testing.T, c *harness.Cluster, a *harness.Agent, name string) corev1.Service {
	t.Helper()
	var s corev1.Service
	if err := json.Unmarshal([]byte(c.MustCLI(a, "get", "service", name, "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestServiceProxy covers services acceptance 1, 3, 4, 5 and the
// ClusterIP part of 7: allocation, DNS, the proxy on ClusterIPs and node
// ports, weights, readiness draining, a dead node's pods, UDP.
func TestServiceProxy(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 3, harness.Options{ExtraArgs: []string{"--service-cidr", servicesCIDR, "--pod-eviction-timeout", "60s"}})
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 0)
	a := c.Agents[0]
	c.MustCLI(a, "apply", "-f", writeManifest(t, "web.yaml", appDeployment("web", "v1", 3, 8080)+
		appDeployment("web", "v2", 1, 8081)+servicesManifest))
	waitReady(t, c, a, 3, 60*time.Second, "-l", "app=web,version=v1")
	waitReady(t, c, a, 1, 60*time.Second, "-l", "app=web,version=v2")
	pods, err := getPods(c, a, "-l", "app=web,version=v1")
	if err != nil {
		t.Fatal(err)
	}
	var v1Pods []string
	podNode := map[string]string{}
	podIP := map[string]string{}
	for _, p := range pods.Items {
		v1Pods = append(v1Pods, p.Name)
		podNode[p.Name], podIP[p.Name] = p.Spec.NodeName, p.Status.PodIP
	}
	slices.Sort(v1Pods)

	web := getService(t, c, a, "web")
	ip := web.Spec.ClusterIP
	nodePort := web.Spec.Ports[0].NodePort
	if !strings.HasPrefix(ip, "10.97.0.") || nodePort < 30000 || nodePort > 32767 {
		t.Fatalf("allocated ClusterIP %q node port %d: want one from %s and 30000-32767", ip, nodePort, servicesCIDR)
	}

	t.Run("DNS gives the allocated ClusterIP on every agent", func(t *testing.T) {
		for _, b := range c.Agents {
			out, err := dig(t, b.IP, "+short", "web.default.svc.cluster.local")
			if err != nil || out != ip {
				t.Fatalf("dig @%s: %v %q, want %s", b.IP, err, out, ip)
			}
		}
	})

	t.Run("ClusterIP and every node port reach all three pods", func(t *testing.T) {
		urls := []string{fmt.Sprintf("http://%s:80/", ip)}
		for _, b := range c.Agents {
			urls = append(urls, fmt.Sprintf("http://%s:%d/", b.IP, nodePort))
		}
		for _, u := range urls {
			// The proxy may still be opening its listener right after
			// the service was written.
			waitAnswer(t, u)
			got := spread(t, u, 30)
			if !slices.Equal(slices.Sorted(maps.Keys(got)), v1Pods) {
				t.Fatalf("%s: 30 requests reached %v, want each of %v", u, got, v1Pods)
			}
		}
	})

	t.Run("a requested ClusterIP or node port in use is refused", func(t *testing.T) {
		taken := fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: thief}\nspec:\n  clusterIP: %s\n  ports: [{port: 80}]\n", ip)
		r := c.CLI(a, nil, "apply", "-f", writeManifest(t, "thief.yaml", taken))
		if r.Code == 0 || !strings.Contains(r.Stderr, "spec.clusterIP") || !strings.Contains(r.Stderr, "already allocated to service default/web") {
			t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
		}
		if r := c.CLI(a, nil, "get", "service", "thief"); r.Code == 0 {
			t.Fatal("refused service was stored")
		}
		port := fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: thief}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: %d}]\n", nodePort)
		r = c.CLI(a, nil, "apply", "-f", writeManifest(t, "thief-port.yaml", port))
		if r.Code == 0 || !strings.Contains(r.Stderr, fmt.Sprintf("spec.ports: node port TCP/%d: already allocated to service default/web", nodePort)) {
			t.Fatalf("node port in use: exit %d, stderr %q", r.Code, r.Stderr)
		}
		if r := c.CLI(a, nil, "get", "service", "thief"); r.Code == 0 {
			t.Fatal("refused service was stored")
		}
	})

	t.Run("a LoadBalancer service is served on every node and its external IP", func(t *testing.T) {
		lb := `apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web, version: v1}
  externalIPs: [127.0.99.1]
  ports: [{name: http, port: 8090, targetPort: http}]
`
		c.MustCLI(a, "apply", "-f", writeManifest(t, "lb.yaml", lb))
		var want []string
		for _, b := range c.Agents {
			want = append(want, b.IP)
		}
		slices.Sort(want)
		waitfor.Cond(t, 10*time.Second, "the node addresses as the ingress", func() (bool, string) {
			s := getService(t, c, a, "lb")
			var got []string
			for _, in := range s.Status.LoadBalancer.Ingress {
				got = append(got, in.IP)
			}
			return slices.Equal(got, want), fmt.Sprint(got)
		})
		for _, host := range append(want, "127.0.99.1") {
			u := fmt.Sprintf("http://%s:8090/", host)
			waitfor.Cond(t, 10*time.Second, "an answer from "+u, func() (bool, string) {
				r, err := httpGet(u)
				return err == nil && slices.Contains(v1Pods, r.Pod), fmt.Sprint(r, err)
			})
		}
	})

	t.Run("90/10 weights over two deployments", func(t *testing.T) {
		split := getService(t, c, a, "split")
		u := fmt.Sprintf("http://%s:8000/", split.Spec.ClusterIP)
		waitAnswer(t, u)
		v2 := 0
		const n = 2000
		for range n {
			r, err := httpGet(u)
			if err != nil {
				t.Fatal(err)
			}
			if r.Version == "v2" {
				v2++
			}
		}
		share := 100 * float64(v2) / n
		t.Logf("v2 share over %d requests: %.1f %%", n, share)
		if share < 7 || share > 13 {
			t.Fatalf("v2 got %.1f %% of %d requests, want 10 +- 3", share, n)
		}
	})

	t.Run("UDP through the ClusterIP", func(t *testing.T) {
		echo := getService(t, c, a, "echo")
		waitReady(t, c, a, 1, 60*time.Second, "-l", "app=echo")
		waitfor.Cond(t, 10*time.Second, "a UDP echo", func() (bool, string) {
			conn, err := net.Dial("udp", net.JoinHostPort(echo.Spec.ClusterIP, "53"))
			if err != nil {
				return false, err.Error()
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			if _, err := conn.Write([]byte("ping")); err != nil {
				return false, err.Error()
			}
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			return err == nil && strings.Contains(string(buf[:n]), "ping"), fmt.Sprintf("%q %v", buf[:max(n, 0)], err)
		})
	})

	t.Run("a pod finds a service by its short name and by env", func(t *testing.T) {
		client := `apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  restartPolicy: Never
  containers:
  - name: get
    image: shoal-testapp
    command: ["shoal-testapp", "get", "http://web/"]
  - name: env
    image: shoal-testapp
    command: ["shoal-testapp", "print"]
    env: [{name: PRINT_RESOLV, value: "1"}, {name: PRINT_ENV, value: "WEB_PORT,WEB_PORT_80_TCP_ADDR"}]
`
		c.MustCLI(a, "apply", "-f", writeManifest(t, "client.yaml", client))
		waitfor.Cond(t, 30*time.Second, "client pod Succeeded", func() (bool, string) {
			p, err := getPod(t, c, a, "client")
			return err == nil && p.Status.Phase == corev1.PodSucceeded, fmt.Sprintf("%s %v", p.Status.Phase, err)
		})
		var r reply
		out := c.MustCLI(a, "logs", "client", "-c", "get")
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil || !slices.Contains(v1Pods, r.Pod) {
			t.Fatalf("GET http://web/ from a pod: %v\n%s", err, out)
		}
		env := c.MustCLI(a, "logs", "client", "-c", "env")
		for _, want := range []string{"WEB_SERVICE_HOST=" + ip, "WEB_SERVICE_PORT=80", "WEB_SERVICE_PORT_HTTP=80",
			"WEB_PORT=tcp://" + ip + ":80", "WEB_PORT_80_TCP_ADDR=" + ip, "search default.svc.cluster.local svc.cluster.local cluster.local"} {
			if !strings.Contains(env, want) {
				t.Errorf("the pod's env and resolv.conf lack %q:\n%s", want, env)
			}
		}
	})

	u := fmt.Sprintf("http://%s:80/", ip)
	flipped := v1Pods[0]
	t.Run("a pod that stops being Ready is drained", func(t *testing.T) {
		// A kept-alive connection that landed on the pod about to fail.
		var onFlipped *http.Client
		for range 100 {
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
			if r, err := getWith(cl, u); err == nil && r.Pod == flipped {
				onFlipped = cl
				break
			}
			cl.CloseIdleConnections()
		}
		if onFlipped == nil {
			t.Fatalf("no connection reached %s in 100 tries", flipped)
		}
		podURL := fmt.Sprintf("http://%s/ready/fail", net.JoinHostPort(podIP[flipped], "8080"))
		resp, err := http.Post(podURL, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		flippedAt := time.Now()
		// Within 2 s of the flip, 30 new connections in a row miss it.
		waitfor.Cond(t, 2*time.Second, "no new request reaching "+flipped, func() (bool, string) {
			got := spread(t, u, 30)
			return got[flipped] == 0, fmt.Sprint(got)
		})
		t.Logf("%s drained %v after its readiness flipped", flipped, time.Since(flippedAt).Round(time.Millisecond))
		// The connection opened before still reaches it.
		if r, err := getWith(onFlipped, u); err != nil || r.Pod != flipped {
			t.Fatalf("kept-alive connection after the drain: %v %+v", err, r)
		}
	})

	t.Run("a killed agent's pods leave the rotation once its node is NotReady", func(t *testing.T) {
		var victim *harness.Agent
		var victimPod string
		for _, p := range v1Pods[1:] {
			for _, b := range c.Agents[1:] {
				if podNode[p] == b.Name {
					victim, victimPod = b, p
				}
			}
		}
		if victim == nil {
			t.Skipf("no Ready v1 pod on an agent other than the first: %v", podNode)
		}
		c.Kill(victim)
		waitfor.Cond(t, 30*time.Second, victim.Name+" NotReady", func() (bool, string) {
			out := c.CLI(a, nil, "get", "node", victim.Name).Stdout
			return strings.Contains(out, "NotReady"), out
		})
		// Its pod process lives on (the process runtime keeps pods
		// across agent restarts) but gets no traffic: the proxies drop it
		// within their refresh.
		waitfor.Cond(t, 5*time.Second, "no request reaching "+victimPod, func() (bool, string) {
			got := spread(t, u, 30)
			return got[victimPod] == 0, fmt.Sprint(got)
		})
		for _, b := range c.Agents {
			if b == victim {
				continue
			}
			got := spread(t, fmt.Sprintf("http://%s:%d/", b.IP, nodePort), 20)
			if got[victimPod] != 0 || got[flipped] != 0 {
				t.Fatalf("node port on %s still routes to a dead or unready pod: %v", b.Name, got)
			}
		}
	})
}

func getWith(cl *http.Client, url string) (reply, error) {
	resp, err := cl.Get(url)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var r reply
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}
