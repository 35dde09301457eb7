package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/runtime/containerd/containerdtest"
	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/e2e/lab"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// startLab makes a lab of n network namespaces on one bridge (as `make
// lab` does), a private containerd, and n agents on containerd, one in each
// namespace, started and formed.
func startLab(t *testing.T, name string, n int, extra ...string) (*harness.Cluster, *lab.Lab, *containerdtest.Daemon) {
	t.Helper()
	if err := lab.Available(); err != nil {
		if os.Getenv("SHOAL_REQUIRE_CONTAINERD") == "1" {
			t.Fatalf("lab: %v", err)
		}
		t.Skipf("lab: %v", err)
	}
	d := containerdtest.StartT(t)
	l, err := lab.Up(lab.Config{Name: name, Nodes: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	var dataDir string
	t.Cleanup(func() {
		// After a failure agents may be gone before their pods: drop
		// the pods' network namespace mounts so the data dir can go.
		if dataDir != "" {
			if err := lab.UnmountUnder(dataDir); err != nil {
				t.Errorf("unmount under %s: %v", dataDir, err)
			}
		}
	})
	hosts := make([]harness.Host, n)
	for i, node := range l.Nodes {
		hosts[i] = harness.Host{IP: node.IP.String(), Prefix: node.Prefix()}
	}
	args := append([]string{"--runtime", "containerd", "--containerd-socket", d.Address,
		"--pod-eviction-timeout", "30s", "--restart-backoff", "1s"}, extra...)
	c := harness.New(t, n, harness.Options{Hosts: hosts, ExtraArgs: args})
	dataDir = c.Dir()
	for _, a := range c.Agents {
		// One containerd namespace per agent; every agent has a network
		// namespace of its own, so the default bridge name serves all.
		a.AddArgs("--containerd-namespace", d.NewNamespace())
	}
	c.StartAll()
	c.WaitFormed(90*time.Second, min(n, 3), max(n-3, 0))
	return c, l, d
}

type nodeList struct {
	Items []corev1.Node `json:"items"`
}

// podCIDRs waits until every node has a pod CIDR and every agent gossips
// it, and returns them by node name.
func podCIDRs(t *testing.T, c *harness.Cluster) map[string]netip.Prefix {
	t.Helper()
	out := map[string]netip.Prefix{}
	waitfor.Cond(t, 30*time.Second, "a pod CIDR on every node", func() (bool, string) {
		r := c.CLI(c.Agents[0], nil, "get", "nodes", "-o", "json")
		var l nodeList
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &l) != nil {
			return false, r.Stderr
		}
		clear(out)
		for _, n := range l.Items {
			if p, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
				out[n.Name] = p
			}
		}
		return len(out) == len(c.Agents), fmt.Sprint(out)
	})
	return out
}

// podRoutes reads the routes Shoal installed in a node (proto 83) as
// "dst via gw" lines.
func podRoutes(t *testing.T, n lab.Node) []string {
	t.Helper()
	out, err := n.IPCmd("route", "show", "proto", "83")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[1] == "via" {
			lines = append(lines, f[0]+" via "+f[2])
		}
	}
	slices.Sort(lines)
	return lines
}

// wantRoutes is what node i should route: every other live node's range
// via its address.
func wantRoutes(c *harness.Cluster, cidrs map[string]netip.Prefix, i int, live ...int) []string {
	var want []string
	for _, j := range live {
		if j != i {
			a := c.Agents[j]
			want = append(want, cidrs[a.Name].String()+" via "+a.IP)
		}
	}
	slices.Sort(want)
	return want
}

// execIn runs a command in a pod's container and returns its stdout.
func execIn(c *harness.Cluster, a *harness.Agent, pod, container string, cmd ...string) (string, error) {
	args := []string{"exec", pod}
	if container != "" {
		args = append(args, "-c", container)
	}
	r := c.CLI(a, nil, append(append(args, "--"), cmd...)...)
	if r.Code != 0 {
		return r.Stdout, fmt.Errorf("exec %s %v: exit %d: %s", pod, cmd, r.Code, strings.TrimSpace(r.Stderr))
	}
	return r.Stdout, nil
}

// TestLabContainerd is the containerd issue's acceptance 1, 2 and 5 on
// three nodes, each an agent in a network namespace of its own on one
// bridge, running real containers: per-node pod CIDRs from the cluster,
// host-gateway routes between nodes that follow membership, pod to pod
// across nodes by IP and pod to service by DNS name, containers of one
// pod over localhost, and re-adoption after SIGKILL with what no longer
// belongs cleaned up.
func TestLabContainerd(t *testing.T) {
	skipShort(t)
	c, l, d := startLab(t, "e2e", 3)
	n1 := c.Agents[0]
	archive, err := containerdtest.BuildImage(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cidrs := podCIDRs(t, c)

	t.Run("every node has its own pod CIDR and routes to the others'", func(t *testing.T) {
		seen := map[netip.Prefix]string{}
		for name, p := range cidrs {
			if other, dup := seen[p]; dup || p.Bits() != 24 || !netip.MustParsePrefix("10.244.0.0/16").Contains(p.Addr()) {
				t.Fatalf("node %s pod CIDR %s (also %q): want a /24 of 10.244.0.0/16 of its own", name, p, other)
			}
			seen[p] = name
		}
		for i, node := range l.Nodes {
			want := wantRoutes(c, cidrs, i, 0, 1, 2)
			waitfor.Cond(t, 20*time.Second, fmt.Sprintf("routes of %s", c.Agents[i].Name), func() (bool, string) {
				got := podRoutes(t, node)
				return slices.Equal(got, want), fmt.Sprintf("got %v, want %v", got, want)
			})
		}
	})

	// The image goes to n1 only; the other agents fetch it from a peer.
	out := c.MustCLI(n1, "image", "load", archive)
	if !strings.Contains(out, containerdtest.TestAppImage) {
		t.Fatalf("image load: %q", out)
	}

	manifest := containerdWeb(6, "IfNotPresent") + fmt.Sprintf(`---
apiVersion: v1
kind: Pod
metadata: {name: duo, namespace: default}
spec:
  containers:
  - name: server
    image: %[1]s
    command: ["/shoal-testapp", "serve", "--port", "9090"]
    env:
    - {name: POD_NAME, value: duo-server}
  - name: client
    image: %[1]s
    command: ["/shoal-testapp", "sleep"]
`, containerdtest.TestAppImage)
	c.MustCLI(n1, "apply", "-f", writeManifest(t, "web.yaml", manifest))
	t.Cleanup(func() { deleteAndWaitGone(t, c, n1, "deployment/web", "pod/duo") })
	byNode := waitReady(t, c, n1, 6, 3*time.Minute, "-l", "app=web")
	if len(byNode) != 3 {
		t.Fatalf("6 replicas over %v: want all three nodes", byNode)
	}
	pods, err := getPods(c, n1, "-l", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	hostOf := map[string]string{}
	for _, a := range c.Agents {
		hostOf[a.Name] = a.IP
	}
	podOn := map[string]corev1.Pod{} // a pod per node
	var ips []string
	for _, p := range pods.Items {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !cidrs[p.Spec.NodeName].Contains(ip) || p.Status.HostIP != hostOf[p.Spec.NodeName] {
			t.Fatalf("pod %s on %s: IP %q host %q; want an address of %s on %s", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.HostIP,
				cidrs[p.Spec.NodeName], hostOf[p.Spec.NodeName])
		}
		ips = append(ips, p.Status.PodIP)
		podOn[p.Spec.NodeName] = p
	}
	slices.Sort(ips)
	if len(slices.Compact(ips)) != 6 {
		t.Fatalf("pod IPs %v: want six distinct", ips)
	}

	t.Run("the other nodes fetched the image from a peer", func(t *testing.T) {
		for _, a := range c.Agents {
			cl, err := d.Client(nsOf(t, a))
			if err != nil {
				t.Fatal(err)
			}
			img, err := cl.GetImage(t.Context(), containerdtest.TestAppImage)
			cl.Close()
			if err != nil {
				t.Fatalf("%s holds no %s: %v", a.Name, containerdtest.TestAppImage, err)
			}
			if a != n1 {
				if want := imageDigest(t, d, nsOf(t, n1)); img.Target().Digest.String() != want {
					t.Fatalf("%s's image is %s, n1's %s", a.Name, img.Target().Digest, want)
				}
			}
		}
		ls := c.MustCLI(c.Agents[2], "image", "ls")
		if !strings.Contains(ls, containerdtest.TestAppImage) || !strings.Contains(ls, "n1,n2,n3") {
			t.Fatalf("image ls:\n%s", ls)
		}
	})

	a, cNode := podOn["n1"], podOn["n3"]
	t.Run("a pod on one node reaches a pod on another by IP", func(t *testing.T) {
		got, err := execIn(c, n1, a.Name, "", "/shoal-testapp", "get", "http://"+cNode.Status.PodIP+":8080/")
		var r struct{ Pod, Client string }
		if err != nil || json.Unmarshal([]byte(got), &r) != nil || r.Pod != cNode.Name {
			t.Fatalf("from %s on n1 to %s (%s) on n3: %q, %v", a.Name, cNode.Name, cNode.Status.PodIP, got, err)
		}
		// Without NAT: the pod on n3 sees the pod on n1's own address.
		if r.Client != a.Status.PodIP {
			t.Fatalf("%s saw the request come from %s, want %s's address %s", cNode.Name, r.Client, a.Name, a.Status.PodIP)
		}
	})

	t.Run("a pod reaches a service by its DNS name", func(t *testing.T) {
		names := map[string]bool{}
		for _, p := range pods.Items {
			names[p.Name] = true
		}
		waitfor.Cond(t, 20*time.Second, "web by name from a pod", func() (bool, string) {
			got, err := execIn(c, n1, a.Name, "", "/shoal-testapp", "get", "http://web/")
			var r reply
			if err != nil || json.Unmarshal([]byte(got), &r) != nil || !names[r.Pod] {
				return false, fmt.Sprintf("%q %v", got, err)
			}
			return true, ""
		})
		got, err := execIn(c, n1, a.Name, "", "/shoal-testapp", "resolve", "web.default.svc.cluster.local")
		svc := getService(t, c, n1, "web")
		if err != nil || !strings.Contains(got, svc.Spec.ClusterIP) {
			t.Fatalf("resolve web.default.svc.cluster.local in a pod: %q, %v; want %s", got, err, svc.Spec.ClusterIP)
		}
	})

	t.Run("two containers of one pod talk over localhost", func(t *testing.T) {
		waitfor.Cond(t, 60*time.Second, "duo's client reaching its server on localhost", func() (bool, string) {
			got, err := execIn(c, n1, "duo", "client", "/shoal-testapp", "get", "http://127.0.0.1:9090/")
			return err == nil && strings.Contains(got, "duo-server"), fmt.Sprintf("%q %v", got, err)
		})
	})

	t.Run("a container over its memory limit is OOMKilled and restarted", func(t *testing.T) {
		hog := `apiVersion: v1
kind: Pod
metadata: {name: hog, namespace: default}
spec:
  restartPolicy: Always
  containers:
  - name: hog
    image: ` + containerdtest.TestAppImage + `
    command: ["/shoal-testapp", "burn", "--cpu", "0", "--mem", "256Mi"]
    resources: {limits: {memory: 32Mi}}
`
		c.MustCLI(n1, "apply", "-f", writeManifest(t, "hog.yaml", hog))
		t.Cleanup(func() { c.CLI(n1, nil, "delete", "pod", "hog", "--ignore-not-found") })
		waitfor.Cond(t, 90*time.Second, "hog OOMKilled and restarted", func() (bool, string) {
			p, err := getPod(t, c, n1, "hog")
			if err != nil || len(p.Status.ContainerStatuses) != 1 {
				return false, fmt.Sprint(err, p.Status)
			}
			cs := p.Status.ContainerStatuses[0]
			last := cs.LastTerminationState.Terminated
			return cs.RestartCount >= 1 && last != nil && last.Reason == "OOMKilled" && last.ExitCode == 137,
				fmt.Sprintf("restarts %d, last %+v, now %+v", cs.RestartCount, last, cs.State)
		})
		waitfor.Cond(t, 10*time.Second, "describe showing OOMKilled", func() (bool, string) {
			desc := c.CLI(n1, nil, "describe", "pod", "hog").Stdout
			return strings.Contains(desc, "OOMKilled"), desc
		})
	})

	t.Run("top pods shows CPU and memory of running pods", func(t *testing.T) {
		burner := `apiVersion: v1
kind: Pod
metadata: {name: burner, namespace: default}
spec:
  containers:
  - name: burner
    image: ` + containerdtest.TestAppImage + `
    command: ["/shoal-testapp", "burn", "--cpu", "1", "--mem", "24Mi"]
    resources: {limits: {memory: 128Mi, cpu: 200m}}
`
		c.MustCLI(n1, "apply", "-f", writeManifest(t, "burner.yaml", burner))
		t.Cleanup(func() { c.CLI(n1, nil, "delete", "pod", "burner", "--ignore-not-found") })
		// Two samples of the kubelet (10 s apart) make a CPU rate.
		waitfor.Cond(t, 90*time.Second, "top pods with figures for burner and the web pods", func() (bool, string) {
			r := c.CLI(c.Agents[1], nil, "top", "pods")
			if r.Code != 0 {
				return false, r.Stderr
			}
			rows := map[string][2]string{}
			for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n")[1:] {
				if f := strings.Fields(line); len(f) == 3 {
					rows[f[0]] = [2]string{f[1], f[2]}
				}
			}
			b, ok := rows["burner"]
			cpu, err1 := strconv.Atoi(strings.TrimSuffix(b[0], "m"))
			mem, err2 := strconv.Atoi(strings.TrimSuffix(b[1], "Mi"))
			if !ok || err1 != nil || err2 != nil || cpu == 0 || mem < 24 {
				return false, r.Stdout
			}
			for _, p := range pods.Items {
				if w, ok := rows[p.Name]; !ok || w[1] == "0Mi" {
					return false, r.Stdout
				}
			}
			return true, r.Stdout
		})
		if r := c.CLI(n1, nil, "top", "nodes"); r.Code != 0 || strings.Count(r.Stdout, "\n") != 4 {
			t.Fatalf("top nodes: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})

	t.Run("a dead node's route goes and comes back with it", func(t *testing.T) {
		victim := c.Agents[2]
		c.Kill(victim)
		for i := range 2 {
			want := wantRoutes(c, cidrs, i, 0, 1)
			waitfor.Cond(t, 30*time.Second, fmt.Sprintf("%s without a route to %s", c.Agents[i].Name, victim.Name), func() (bool, string) {
				got := podRoutes(t, l.Nodes[i])
				return slices.Equal(got, want), fmt.Sprintf("got %v, want %v", got, want)
			})
		}
		c.Start(victim)
		c.WaitFormed(60*time.Second, 3, 0)
		for i := range 3 {
			want := wantRoutes(c, cidrs, i, 0, 1, 2)
			waitfor.Cond(t, 30*time.Second, fmt.Sprintf("routes of %s", c.Agents[i].Name), func() (bool, string) {
				got := podRoutes(t, l.Nodes[i])
				return slices.Equal(got, want), fmt.Sprintf("got %v, want %v", got, want)
			})
		}
		waitReady(t, c, n1, 6, 60*time.Second, "-l", "app=web")
	})

	t.Run("a killed agent re-adopts its containers and cleans up what no longer belongs", func(t *testing.T) {
		victim := c.Agents[1]
		before, err := getPods(c, n1, "-l", "app=web")
		if err != nil {
			t.Fatal(err)
		}
		var mine []corev1.Pod
		for _, p := range before.Items {
			if p.Spec.NodeName == victim.Name {
				mine = append(mine, p)
			}
		}
		if len(mine) < 2 {
			t.Fatalf("want two web pods on %s: %s", victim.Name, describePods(before))
		}
		c.Kill(victim)
		// While it is down, one of its pods is deleted for good: its
		// container keeps running, unknown to the cluster.
		c.MustCLI(n1, "scale", "deployment", "web", "--replicas", "5")
		var gone corev1.Pod
		waitfor.Cond(t, 20*time.Second, "5 web pods", func() (bool, string) {
			cur, err := getPods(c, n1, "-l", "app=web")
			if err != nil {
				return false, err.Error()
			}
			for _, p := range cur.Items {
				if p.Spec.NodeName == victim.Name {
					gone = p
				}
			}
			return len(cur.Items) == 5 && gone.Name != "", describePods(cur)
		})
		c.MustCLI(n1, "delete", "pod", gone.Name)
		c.Start(victim)
		c.WaitFormed(60*time.Second, 3, 0)
		waitReady(t, c, n1, 5, 90*time.Second, "-l", "app=web")
		after, err := getPods(c, n1, "-l", "app=web")
		if err != nil {
			t.Fatal(err)
		}
		was := map[string]corev1.Pod{}
		for _, p := range before.Items {
			was[p.Name] = p
		}
		for _, p := range after.Items {
			if p.Name == gone.Name {
				t.Fatalf("deleted pod %s is back", gone.Name)
			}
			if b, ok := was[p.Name]; ok && p.Spec.NodeName == victim.Name && (b.Status.PodIP != p.Status.PodIP || restarts(p) != restarts(b)) {
				t.Fatalf("pod %s after the restart: IP %s restarts %d; before IP %s restarts %d", p.Name, p.Status.PodIP, restarts(p), b.Status.PodIP, restarts(b))
			}
		}
		// In containerd: one container per live pod of the victim's, none
		// of the deleted pod's; its network namespace is gone.
		waitfor.Cond(t, 60*time.Second, "the deleted pod's container and network gone from "+victim.Name, func() (bool, string) {
			cl, err := d.Client(nsOf(t, victim))
			if err != nil {
				return false, err.Error()
			}
			defer cl.Close()
			ctrs, err := cl.Containers(t.Context())
			if err != nil {
				return false, err.Error()
			}
			var ids []string
			stale := false
			for _, ctr := range ctrs {
				ids = append(ids, ctr.ID())
				labels, err := ctr.Labels(t.Context())
				if err != nil {
					return false, err.Error()
				}
				stale = stale || labels["shoal.pod.uid"] == string(gone.UID)
			}
			onVictim := 0
			cur, _ := getPods(c, n1)
			for _, p := range cur.Items {
				if p.Spec.NodeName == victim.Name {
					onVictim += len(p.Spec.Containers)
				}
			}
			mounts, _ := os.ReadFile("/proc/self/mounts")
			stale = stale || strings.Contains(string(mounts), string(gone.UID))
			return !stale && len(ids) == onVictim, fmt.Sprintf("containers %v, %d expected, stale %v", ids, onVictim, stale)
		})
	})
}

// nsOf is the containerd namespace an agent was started with.
func nsOf(t *testing.T, a *harness.Agent) string {
	t.Helper()
	args := a.Args()
	for i, v := range args {
		if v == "--containerd-namespace" && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("%s has no --containerd-namespace", a.Name)
	return ""
}

func imageDigest(t *testing.T, d *containerdtest.Daemon, ns string) string {
	t.Helper()
	cl, err := d.Client(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	img, err := cl.GetImage(t.Context(), containerdtest.TestAppImage)
	if err != nil {
		t.Fatal(err)
	}
	return img.Target().Digest.String()
}
