package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/e2e/bench/internal/poll"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"github.com/shoal-dev/shoal/e2e/harness"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

const (
	formLimit  = 60 * time.Second
	readyLimit = 90 * time.Second
)

// bench holds what the run started: the agent (and through it the
// backend pods), HAProxy, and whether the service CIDR's local route is
// the run's to remove.
type bench struct {
	cfg               config
	dir               string
	shoalBin, testapp string
	agent, haproxy    *proc.Proc
	ownRoute          bool
}

// startAgent starts the agent, waits until it serves the API, and applies
// the backends and their services.
func (b *bench) startAgent(ctx context.Context) error {
	had, err := localRoute(ctx)
	if err != nil {
		return err
	}
	b.ownRoute = !had
	data := filepath.Join(b.dir, "shoal")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	// The pods' commands are looked up in the agent's PATH.
	env := append(os.Environ(), "PATH="+filepath.Dir(b.testapp)+string(os.PathListSeparator)+os.Getenv("PATH"))
	b.agent = &proc.Proc{Name: "shoal agent", Bin: b.shoalBin, Env: env, LogPath: data + ".log",
		Args: []string{"agent", "--name", "n1", "--bind", agentIP, "--data-dir", data, "--bootstrap-expect", "1",
			"--service-cidr", serviceCIDR, "--dns-port", "-1", "--log-level", "warn"}}
	if err := b.agent.Start(); err != nil {
		return err
	}
	api := net.JoinHostPort(agentIP, "7948")
	conn, err := client.Dial(api)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := waitUntil(ctx, formLimit, func(ctx context.Context) error {
		if b.agent.Exited() {
			return errors.New("the agent exited")
		}
		_, err := conn.Get(ctx, &pb.GetRequest{Kind: "Namespace", Name: "default", Read: &pb.ReadOptions{Linearizable: true}})
		return err
	}); err != nil {
		return fmt.Errorf("agent did not come up: %w", err)
	}
	manifest := filepath.Join(b.dir, "backends.yaml")
	if err := os.WriteFile(manifest, []byte(backendsYAML()), 0o644); err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(actx, b.shoalBin, "--server", api, "apply", "-f", manifest).CombinedOutput(); err != nil {
		return fmt.Errorf("shoal apply -f %s: %w\n%s", manifest, err, proc.Last(out, 2000))
	}
	return nil
}

// backendsYAML is the two backend Deployments (one pod each) and their
// ClusterIP services. The process runtime does not expand $(VAR) in
// commands, so iperf3 gets the pod IP through sh.
func backendsYAML() string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: iperf3, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: iperf3}}
  template:
    metadata: {labels: {app: iperf3}}
    spec:
      containers:
      - name: iperf3
        image: iperf3
        command: [sh, -c, 'exec iperf3 -s -p %[1]d -B "$POD_IP"']
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        ports: [{containerPort: %[1]d}]
---
apiVersion: v1
kind: Service
metadata: {name: iperf3, namespace: default}
spec:
  clusterIP: %[2]s
  selector: {app: iperf3}
  ports: [{name: iperf3, port: %[1]d, targetPort: %[1]d}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: http, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: http}}
  template:
    metadata: {labels: {app: http}}
    spec:
      containers:
      - name: http
        image: shoal-testapp
        command: [shoal-testapp, serve, --port, "%[3]d"]
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        ports: [{containerPort: %[3]d}]
---
apiVersion: v1
kind: Service
metadata: {name: http, namespace: default}
spec:
  clusterIP: %[4]s
  selector: {app: http}
  ports: [{name: http, port: %[5]d, targetPort: %[3]d}]
`, iperfPort, iperfVIP, httpPort, httpVIP, httpSvcPort)
}

// localRoute reports whether the service CIDR's local route exists.
func localRoute(ctx context.Context) (bool, error) {
	out, err := exec.CommandContext(ctx, "ip", "route", "show", "table", "local", "exact", serviceCIDR).Output()
	if err != nil {
		return false, fmt.Errorf("ip route show table local exact %s: %w (iproute2)", serviceCIDR, err)
	}
	return len(bytes.TrimSpace(out)) > 0, nil
}

// haproxyConfig is HAProxy's configuration: one TCP frontend on ip per
// backend, each with one server line, no logging.
func haproxyConfig(ip string, nbthread, maxconn int, splice bool, timeout time.Duration, backends map[int]string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "global\n    maxconn %d\n    nbthread %d\n\n", maxconn, nbthread)
	fmt.Fprintf(&sb, "defaults\n    mode tcp\n    maxconn %d\n", maxconn)
	if splice {
		sb.WriteString("    option splice-auto\n")
	}
	ms := timeout.Milliseconds()
	fmt.Fprintf(&sb, "    timeout connect 5s\n    timeout client %dms\n    timeout server %dms\n", ms, ms)
	ports := make([]int, 0, len(backends))
	for p := range backends {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	for _, p := range ports {
		fmt.Fprintf(&sb, "\nfrontend f%[1]d\n    bind %[2]s:%[1]d\n    default_backend b%[1]d\n", p, ip)
		fmt.Fprintf(&sb, "\nbackend b%d\n    server s1 %s\n", p, backends[p])
	}
	return sb.String()
}

// startHAProxy writes the configuration, checks it, and runs HAProxy in
// the foreground until it listens.
func (b *bench) startHAProxy(ctx context.Context) error {
	cfgPath := filepath.Join(b.dir, "haproxy.cfg")
	// The iperf3 control connection is idle during a test: the timeouts
	// must outlast one.
	timeout := max(time.Minute, 2*b.cfg.seconds+30*time.Second)
	conf := haproxyConfig(haproxyIP, runtime.NumCPU(), haproxyMaxconn(), b.cfg.haproxySplice, timeout, map[int]string{
		iperfPort: net.JoinHostPort(agentIP, strconv.Itoa(iperfPort)),
		httpPort:  net.JoinHostPort(agentIP, strconv.Itoa(httpPort)),
	})
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, b.cfg.haproxyBin, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		return fmt.Errorf("haproxy -c -f %s: %w\n%s", cfgPath, err, proc.Last(out, 2000))
	}
	b.haproxy = &proc.Proc{Name: "haproxy", Bin: b.cfg.haproxyBin, LogPath: filepath.Join(b.dir, "haproxy.log"),
		Args: []string{"-f", cfgPath, "-db"}}
	if err := b.haproxy.Start(); err != nil {
		return err
	}
	return waitUntil(ctx, 10*time.Second, func(context.Context) error {
		if b.haproxy.Exited() {
			return errors.New("haproxy exited")
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(haproxyIP, strconv.Itoa(httpPort)), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// haproxyMaxconn is 100000, or less when the hard limit of open files
// is lower: HAProxy refuses to start when it cannot raise its limit to
// two descriptors per connection plus its splicing pipes (maxpipes is
// maxconn/4, two descriptors each).
func haproxyMaxconn() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max < 4000 {
		return 1000
	}
	return int(min(100000, (lim.Max-1000)/3))
}

func (b *bench) haproxyVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, b.cfg.haproxyBin, "-v").Output()
	first, _, _ := strings.Cut(string(out), "\n")
	if v, ok := strings.CutPrefix(first, "HAProxy version "); err == nil && ok {
		v, _, _ = strings.Cut(v, " ")
		return "HAProxy " + v
	}
	return "HAProxy"
}

// waitPath waits until an HTTP GET and a one-second iperf3 run succeed
// through p: for the shoal path, until the proxy has the Ready endpoints.
func (b *bench) waitPath(ctx context.Context, p path) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://%s/", net.JoinHostPort(p.httpHost, strconv.Itoa(p.httpPort)))
	if err := waitUntil(ctx, readyLimit, func(ctx context.Context) error {
		if b.agent.Exited() {
			return errors.New("the agent exited")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return waitUntil(ctx, readyLimit, func(ctx context.Context) error {
		args := []string{"-c", p.iperfHost, "-p", strconv.Itoa(p.iperfPort), "-t", "1", "-J"}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, b.cfg.iperfBin, args...).Output()
		if _, perr := parseIperf(out); err != nil || perr != nil {
			return fmt.Errorf("iperf3 %s: %w", strings.Join(args, " "), errors.Join(err, perr))
		}
		return nil
	})
}

// stop kills what the run started: the agent, the pods it leaves running
// by design, HAProxy, and removes the local route if the run added it.
func (b *bench) stop(errOut io.Writer) {
	proc.StopAll(errOut, "proxybench", b.agent, b.haproxy)
	if b.agent == nil {
		return
	}
	if n := harness.KillUnder(b.dir); n > 0 {
		fmt.Fprintf(errOut, "proxybench: killed %d pod processes the agent left behind\n", n)
	}
	if b.ownRoute {
		if out, err := exec.Command("ip", "route", "del", "local", serviceCIDR, "dev", "lo", "table", "local").CombinedOutput(); err != nil {
			fmt.Fprintf(errOut, "proxybench: remove the local route for %s: %v %s\n", serviceCIDR, err, bytes.TrimSpace(out))
		}
	}
}

func (b *bench) printLogs(errOut io.Writer) {
	proc.PrintTails(errOut, b.agent, b.haproxy)
}

// cpuMeter reads the CPU time of the agent (which holds the proxy) and of
// HAProxy over one run.
type cpuMeter struct {
	start time.Time
	pids  []int
	names []string
	ticks []int64
}

func (b *bench) cpuMeter() *cpuMeter {
	m := &cpuMeter{start: time.Now()}
	for _, p := range []*proc.Proc{b.agent, b.haproxy} {
		if p == nil {
			continue
		}
		pid := findPid(p.Bin, p.Args)
		m.pids = append(m.pids, pid)
		m.names = append(m.names, strings.Fields(p.Name)[len(strings.Fields(p.Name))-1])
		m.ticks = append(m.ticks, cpuTicks(pid))
	}
	return m
}

// read prints each process's CPU use since the meter started, in percent
// of one core.
func (m *cpuMeter) read() string {
	wall := time.Since(m.start).Seconds()
	var parts []string
	for i, pid := range m.pids {
		t := cpuTicks(pid)
		if pid <= 0 || t < 0 || m.ticks[i] < 0 {
			parts = append(parts, m.names[i]+" ?")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", m.names[i], float64(t-m.ticks[i])/clockTicks/wall*100))
	}
	return "cpu (% of a core): " + strings.Join(parts, ", ")
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on Linux.
const clockTicks = 100

// cpuTicks is utime+stime of pid, or -1.
func cpuTicks(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	// The command name may hold spaces: fields count from after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + s
}

// findPid is the pid of the live process running bin with args, or -1.
// proc.Proc does not export its pid; the command line is unique to the run
// (it names the run's directory).
func findPid(bin string, args []string) int {
	want := strings.Join(append([]string{bin}, args...), "\x00") + "\x00"
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(cmdline) == want {
			return pid
		}
	}
	return -1
}

// waitUntil polls fn until it returns nil, ctx ends or d passes, giving
// each poll at most 20 seconds (an iperf3 check takes one).
func waitUntil(ctx context.Context, d time.Duration, fn func(context.Context) error) error {
	return poll.UntilEvery(ctx, d, 20*time.Second, 100*time.Millisecond, fn)
}
