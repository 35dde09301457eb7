package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/podcidr"
	"github.com/shoal-dev/shoal/agent/podroutes"
	"github.com/shoal-dev/shoal/agent/runtime/containerd/containerdtest"
	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

// TestContainerdRuntime runs a real agent on a private containerd daemon:
// an image loaded through the CLI with no registry, pods with their own
// addresses from the node's pod CIDR, a Service over them through the
// proxy, and a corrupt archive and an unknown image refused clearly.
func TestContainerdRuntime(t *testing.T) {
	skipShort(t)
	d := containerdtest.StartT(t)
	const bridge, podCIDR = "shoale2e0", "10.244.77.0/24"
	t.Cleanup(func() {
		_ = containerdtest.DeleteLink(bridge)
		if err := podroutes.RemoveNoMasquerade(netip.MustParsePrefix(podCIDR), podcidr.DefaultClusterCIDR); err != nil {
			t.Error(err)
		}
	})
	archive, err := containerdtest.BuildImage(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ns := d.NewNamespace()
	c := harness.New(t, 1, harness.Options{BootstrapExpect: 1, ExtraArgs: []string{"--runtime", "containerd",
		"--containerd-socket", d.Address, "--containerd-namespace", ns, "--containerd-bridge", bridge,
		"--pod-cidr", podCIDR, "--service-cidr", "10.97.1.0/24", "--dns-port", "-1"}})
	c.StartAll()
	c.WaitFormed(60*time.Second, 1, 0)
	a := c.Agents[0]

	t.Run("a corrupt archive is refused and nothing is kept", func(t *testing.T) {
		b, err := os.ReadFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "bad.tar")
		if err := os.WriteFile(bad, b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		before := containerdState(t, d, ns)
		r := c.CLI(a, nil, "image", "load", bad)
		if r.Code == 0 || !strings.Contains(r.Stderr, "bad.tar") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Fatalf("corrupt archive: exit %d, stderr %q", r.Code, r.Stderr)
		}
		if after := containerdState(t, d, ns); after != before {
			t.Fatalf("containerd after the corrupt archive: %s; before: %s", after, before)
		}
	})

	out := c.MustCLI(a, "image", "load", archive)
	if !strings.Contains(out, containerdtest.TestAppImage) || !strings.Contains(out, "on "+a.Name) {
		t.Fatalf("image load: %q", out)
	}

	manifest := containerdWeb(3, "Never")
	c.MustCLI(a, "apply", "-f", writeManifest(t, "web.yaml", manifest))
	waitReady(t, c, a, 3, 90*time.Second, "-l", "app=web")
	t.Cleanup(func() {
		c.CLI(a, nil, "delete", "pod", "ghost", "--ignore-not-found")
		deleteAndWaitGone(t, c, a, "deployment/web")
	})

	pods, err := getPods(c, a, "-l", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	prefix := netip.MustParsePrefix(podCIDR)
	var ips, names []string
	for _, p := range pods.Items {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !prefix.Contains(ip) || p.Status.HostIP != a.IP {
			t.Fatalf("pod %s: IP %q host %q, want an address of %s on %s", p.Name, p.Status.PodIP, p.Status.HostIP, podCIDR, a.IP)
		}
		ips, names = append(ips, ip.String()), append(names, p.Name)
	}
	slices.Sort(ips)
	if len(slices.Compact(ips)) != 3 {
		t.Fatalf("pod IPs %v: want three distinct", ips)
	}
	slices.Sort(names)

	t.Run("each pod answers on its own address, and the service reaches all", func(t *testing.T) {
		for _, p := range pods.Items {
			r, err := httpGet("http://" + p.Status.PodIP + ":8080/")
			if err != nil || r.Pod != p.Name {
				t.Fatalf("GET %s: %v %+v", p.Status.PodIP, err, r)
			}
		}
		svc := getService(t, c, a, "web")
		u := fmt.Sprintf("http://%s/", svc.Spec.ClusterIP)
		// The proxy follows the replica within its refresh (200 ms).
		waitAnswer(t, u)
		waitfor.Cond(t, 10*time.Second, "30 requests through "+u+" reaching each of "+strings.Join(names, " "), func() (bool, string) {
			got := spread(t, u, 30)
			return slices.Equal(slices.Sorted(maps.Keys(got)), names), fmt.Sprint(got)
		})
	})

	t.Run("a killed agent re-adopts its running containers", func(t *testing.T) {
		c.Kill(a)
		c.Start(a)
		c.WaitFormed(60*time.Second, 1, 0)
		waitReady(t, c, a, 3, 60*time.Second, "-l", "app=web")
		after, err := getPods(c, a, "-l", "app=web")
		if err != nil {
			t.Fatal(err)
		}
		before := map[string]string{}
		for _, p := range pods.Items {
			before[p.Name] = p.Status.PodIP
		}
		for _, p := range after.Items {
			if ip, ok := before[p.Name]; !ok || ip != p.Status.PodIP || restarts(p) != 0 {
				t.Fatalf("after the restart: pod %s IP %s restarts %d; before %v", p.Name, p.Status.PodIP, restarts(p), before)
			}
			if r, err := httpGet("http://" + p.Status.PodIP + ":8080/"); err != nil || r.Pod != p.Name {
				t.Fatalf("pod %s after the restart: %v %+v", p.Name, err, r)
			}
		}
	})

	t.Run("an unknown image waits in ImagePullBackOff with the error, and leaves nothing behind", func(t *testing.T) {
		before := containerdState(t, d, ns)
		pod := `apiVersion: v1
kind: Pod
metadata: {name: ghost, namespace: default}
spec:
  containers:
  - {name: c, image: "localhost/no-such-image:v1", imagePullPolicy: Never}
  - {name: d, image: "Not//A/Valid:Reference!", imagePullPolicy: IfNotPresent}
`
		c.MustCLI(a, "apply", "-f", writeManifest(t, "ghost.yaml", pod))
		var ghost corev1.Pod
		waitfor.Cond(t, 30*time.Second, "ghost's containers in ImagePullBackOff", func() (bool, string) {
			p, err := getPod(t, c, a, "ghost")
			ghost = p
			if err != nil || len(p.Status.ContainerStatuses) != 2 {
				return false, fmt.Sprint(err, p.Status)
			}
			var msgs []string
			for _, cs := range p.Status.ContainerStatuses {
				w := cs.State.Waiting
				if w == nil || w.Reason != "ImagePullBackOff" {
					return false, fmt.Sprint(cs.State)
				}
				msgs = append(msgs, w.Message)
			}
			return p.Status.Phase == corev1.PodPending && strings.Contains(msgs[0], "no-such-image") && strings.Contains(msgs[1], "Not//A/Valid"),
				strings.Join(msgs, " | ")
		})
		// Events are written in batches: wait for the pull failure's.
		waitfor.Cond(t, 10*time.Second, "describe showing the pull failure", func() (bool, string) {
			desc := c.CLI(a, nil, "describe", "pod", "ghost").Stdout
			return strings.Contains(desc, "ImagePullBackOff") && strings.Contains(desc, "Failed to pull image"), desc
		})
		// No container, snapshot or image was made for it.
		if after := containerdState(t, d, ns); after != before {
			t.Fatalf("containerd after the failed pulls: %s; before: %s", after, before)
		}
		c.MustCLI(a, "delete", "pod", "ghost")
		waitfor.Cond(t, 30*time.Second, "ghost's network namespace gone", func() (bool, string) {
			mounts, _ := os.ReadFile("/proc/self/mounts")
			return !strings.Contains(string(mounts), string(ghost.UID)), "still mounted"
		})
	})

	t.Run("an invalid memory quantity is refused and nothing is stored", func(t *testing.T) {
		pod := `apiVersion: v1
kind: Pod
metadata: {name: greedy, namespace: default}
spec:
  containers:
  - name: c
    image: ` + containerdtest.TestAppImage + `
    resources: {limits: {memory: 12XB}}
`
		r := c.CLI(a, nil, "apply", "-f", writeManifest(t, "greedy.yaml", pod))
		msg := strings.TrimSpace(r.Stderr)
		if r.Code == 0 || strings.Contains(msg, "\n") || !strings.Contains(msg, "greedy.yaml") ||
			!strings.Contains(msg, "spec.containers[0].resources.limits.memory") || !strings.Contains(msg, "12XB") {
			t.Fatalf("invalid memory quantity: exit %d, stderr %q", r.Code, r.Stderr)
		}
		if r := c.CLI(a, nil, "get", "pod", "greedy"); r.Code == 0 {
			t.Fatalf("a refused pod was stored: %s", r.Stdout)
		}
	})
}

// containerdWeb is a Deployment web of the test image serving on 8080 with
// a readiness probe, and a Service web on port 80 in front of it.
func containerdWeb(replicas int, pullPolicy string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: %s
        imagePullPolicy: %s
        command: ["/shoal-testapp", "serve", "--port", "8080"]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        resources: {requests: {cpu: 50m, memory: 16Mi}, limits: {memory: 64Mi, cpu: 250m}}
        readinessProbe:
          httpGet: {path: /ready, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`, replicas, containerdtest.TestAppImage, pullPolicy)
}

// deleteAndWaitGone deletes objects (KIND/NAME) through a and waits until
// no pod is left and no network namespace of a pod is mounted under the
// cluster's directory, so agents tear pod networks down before they are
// killed.
func deleteAndWaitGone(t *testing.T, c *harness.Cluster, a *harness.Agent, objects ...string) {
	t.Helper()
	for _, o := range objects {
		c.CLI(a, nil, "delete", o, "--ignore-not-found")
	}
	waitfor.Cond(t, 90*time.Second, "pods and their network namespaces gone", func() (bool, string) {
		l, err := getPods(c, a)
		mounts, _ := os.ReadFile("/proc/self/mounts")
		left := strings.Count(string(mounts), c.Dir())
		return err == nil && len(l.Items) == 0 && left == 0, fmt.Sprintf("%s; %d mounts under %s", describePods(l), left, c.Dir())
	})
}

// containerdState summarizes what the agent's containerd namespace holds:
// containers, snapshots and images.
func containerdState(t *testing.T, d *containerdtest.Daemon, ns string) string {
	t.Helper()
	cl, err := d.Client(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := namespaces.WithNamespace(t.Context(), ns)
	ctrs, err := cl.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snaps := 0
	if err := cl.SnapshotService("overlayfs").Walk(ctx, func(context.Context, snapshots.Info) error {
		snaps++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	imgs, err := cl.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range imgs {
		names = append(names, i.Name())
	}
	slices.Sort(names)
	return fmt.Sprintf("%d containers, %d snapshots, images %v", len(ctrs), snaps, names)
}

// restarts is the pod's total container restart count.
func restarts(p corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}
