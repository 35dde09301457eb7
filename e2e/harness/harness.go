// Package harness runs real shoal agent processes on 127.0.0.x addresses
// for end-to-end tests and benchmarks: it builds the binary once, starts,
// kills (SIGKILL), stops and restarts agents, drives them through the CLI
// and gRPC as a user would, and prints their logs when a test fails.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/internal/waitfor"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/shoal once per test process and returns its path. Set
// SHOAL_BIN to use a prebuilt binary, SHOAL_E2E_RACE=1 to build with -race.
func Binary() (string, error) {
	buildOnce.Do(func() {
		if p := os.Getenv("SHOAL_BIN"); p != "" {
			binPath = p
			return
		}
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "shoal-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shoal")
		args := []string{"build", "-o", binPath}
		if os.Getenv("SHOAL_E2E_RACE") == "1" {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/shoal")
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build shoal: %v\n%s", err, out)
			return
		}
		// The test application pods run, on the agents' PATH.
		cmd = exec.Command("go", "build", "-o", filepath.Join(dir, "shoal-testapp"), "./cmd/shoal-testapp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build shoal-testapp: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// BinDir is the directory holding shoal and shoal-testapp.
func BinDir() string { return filepath.Dir(binPath) }

func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the repository")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
}

// subnets hands each cluster of a process its own 127.0.N.0/24, so that a
// new cluster never meets the sockets of an old one.
var (
	subnetMu sync.Mutex
	subnet   = 0
)

// nextSubnet returns the next 127.0.S.0/24 whose first agent address has
// its gossip port free, so two test processes on one machine (a developer's
// and CI's, or two packages) do not start agents on each other's addresses.
func nextSubnet() int {
	subnetMu.Lock()
	defer subnetMu.Unlock()
	for {
		s := subnet
		subnet++
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.%d.2:7946", s))
		if err == nil || s >= 250 {
			if ln != nil {
				_ = ln.Close()
			}
			return s
		}
	}
}

// Options shape a cluster.
type Options struct {
	// BootstrapExpect defaults to min(3, agents).
	BootstrapExpect int
	// ExtraArgs are added to every agent's command line.
	ExtraArgs []string
	// Hosts, when set, places agent i (from 0) at Hosts[i]: its address
	// and the command line its process is started through (nsenter into
	// a network namespace of e2e/lab). Agents beyond it stay on loopback.
	Hosts []Host
}

// Host is where one agent runs.
type Host struct {
	IP     string
	Prefix []string
}

// Cluster is a set of agents on one 127.0.N.0/24.
type Cluster struct {
	tb     testing.TB
	bin    string
	dir    string
	net    int
	opts   Options
	Agents []*Agent
}

// Agent is one agent process.
type Agent struct {
	Name    string
	IP      string
	DataDir string
	LogPath string
	args    []string
	prefix  []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// AddArgs appends command-line arguments for the agent's next start.
func (a *Agent) AddArgs(args ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.args = append(a.args, args...)
}

// Args returns the agent's command line (after the binary).
func (a *Agent) Args() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.args)
}

// GRPC is the agent's API address.
func (a *Agent) GRPC() string { return net.JoinHostPort(a.IP, "7948") }

// HTTP is the agent's health and metrics address.
func (a *Agent) HTTP() string { return net.JoinHostPort(a.IP, "7949") }

// Running reports whether the process is up.
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// New prepares a cluster of n agents (not started) named n1..nN on
// 127.0.S.2 onwards. The first cluster of a process uses 127.0.0.2-.
func New(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		tb.Fatal(err)
	}
	if opts.BootstrapExpect == 0 {
		opts.BootstrapExpect = min(3, n)
	}
	c := &Cluster{tb: tb, bin: bin, dir: tb.TempDir(), net: nextSubnet(), opts: opts}
	for i := 0; i < n; i++ {
		c.addAgent()
	}
	tb.Cleanup(c.cleanup)
	return c
}

func (c *Cluster) addAgent() *Agent {
	i := len(c.Agents) + 1
	a := &Agent{
		Name:    fmt.Sprintf("n%d", i),
		IP:      fmt.Sprintf("127.0.%d.%d", c.net, i+1),
		DataDir: filepath.Join(c.dir, fmt.Sprintf("n%d", i)),
		LogPath: filepath.Join(c.dir, fmt.Sprintf("n%d.log", i)),
	}
	a.args = append([]string{"agent", "--name", a.Name, "--bind", a.IP, "--data-dir", a.DataDir,
		"--bootstrap-expect", fmt.Sprint(c.opts.BootstrapExpect), "--join", c.SeedIP()}, c.opts.ExtraArgs...)
	if h := c.host(i - 1); h != nil {
		a.IP, a.prefix = h.IP, h.Prefix
		a.args[4] = a.IP // --bind
	}
	c.Agents = append(c.Agents, a)
	return a
}

func (c *Cluster) host(i int) *Host {
	if i < len(c.opts.Hosts) {
		return &c.opts.Hosts[i]
	}
	return nil
}

// SeedIP is the first agent's address, which every agent joins.
func (c *Cluster) SeedIP() string {
	if h := c.host(0); h != nil {
		return h.IP
	}
	return fmt.Sprintf("127.0.%d.2", c.net)
}

// Add prepares one more agent (not started) and returns it.
func (c *Cluster) Add() *Agent { return c.addAgent() }

// StartAll starts every agent that is not running.
func (c *Cluster) StartAll() {
	c.tb.Helper()
	for _, a := range c.Agents {
		if !a.Running() {
			c.Start(a)
		}
	}
}

// Start starts (or restarts) one agent with its original arguments.
func (c *Cluster) Start(a *Agent) {
	c.tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.tb.Fatal(err)
	}
	fmt.Fprintf(f, "=== start %s %s at %s\n", c.bin, strings.Join(a.args, " "), time.Now().Format(time.RFC3339Nano))
	argv := append(append(slices.Clone(a.prefix), c.bin), a.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "PATH="+BinDir()+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		c.tb.Fatalf("start %s: %v", a.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	a.cmd, a.done, a.log = cmd, done, f
}

// Kill sends SIGKILL and waits for the process to be gone.
func (c *Cluster) Kill(a *Agent) { c.signal(a, syscall.SIGKILL) }

// Stop sends SIGTERM and waits for a clean exit.
func (c *Cluster) Stop(a *Agent) { c.signal(a, syscall.SIGTERM) }

func (c *Cluster) signal(a *Agent, sig syscall.Signal) {
	c.tb.Helper()
	a.mu.Lock()
	cmd, done, f := a.cmd, a.done, a.log
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		c.tb.Errorf("%s did not exit on %v within 20s", a.Name, sig)
	}
	if f != nil {
		fmt.Fprintf(f, "=== %v at %s\n", sig, time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
}

func (c *Cluster) cleanup() {
	for _, a := range c.Agents {
		if a.Running() {
			c.Kill(a)
		}
	}
	// Pods of the process runtime outlive a killed agent by design (a
	// restarted agent adopts them); nothing may outlive the test.
	KillUnder(c.dir)
	if c.tb.Failed() || os.Getenv("SHOAL_E2E_LOGS") == "1" {
		for _, a := range c.Agents {
			b, err := os.ReadFile(a.LogPath)
			if err != nil {
				continue
			}
			const tail = 12000
			if len(b) > tail {
				b = b[len(b)-tail:]
			}
			c.tb.Logf("---- log of %s (%s), last %d bytes ----\n%s", a.Name, a.IP, len(b), b)
		}
	}
}

// Result is the outcome of one CLI run.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// CLI runs `shoal --server <agent> args...` with stdin (may be nil).
func (c *Cluster) CLI(a *Agent, stdin io.Reader, args ...string) Result {
	c.tb.Helper()
	return RunCLI(c.bin, a.GRPC(), stdin, args...)
}

// RunCLI runs the binary against server.
func RunCLI(bin, server string, stdin io.Reader, args ...string) Result {
	cmd := exec.Command(bin, append([]string{"--server", server}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// MustCLI runs the CLI and fails the test on a non-zero exit.
func (c *Cluster) MustCLI(a *Agent, args ...string) string {
	c.tb.Helper()
	r := c.CLI(a, nil, args...)
	if r.Code != 0 {
		c.tb.Fatalf("shoal %s (on %s): exit %d: %s", strings.Join(args, " "), a.Name, r.Code, r.Stderr)
	}
	return r.Stdout
}

// Client dials an agent's gRPC API.
func (c *Cluster) Client(a *Agent) *client.Conn {
	c.tb.Helper()
	conn, err := client.Dial(a.GRPC())
	if err != nil {
		c.tb.Fatal(err)
	}
	c.tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// RaftView is `cluster raft -o json`.
type RaftView struct {
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"appliedIndex"`
	Servers      []struct {
		ID       string `json:"id"`
		Address  string `json:"address"`
		Suffrage string `json:"suffrage"`
		Alive    bool   `json:"alive"`
	} `json:"servers"`
}

// LiveVoters counts voters that gossip sees alive.
func (v RaftView) LiveVoters() (voters, nonvoters int) {
	for _, s := range v.Servers {
		if !s.Alive {
			continue
		}
		if s.Suffrage == "voter" {
			voters++
		} else {
			nonvoters++
		}
	}
	return voters, nonvoters
}

// Raft reads `cluster raft -o json` from an agent.
func (c *Cluster) Raft(a *Agent) (RaftView, error) {
	r := c.CLI(a, nil, "cluster", "raft", "-o", "json", "--timeout", "3s")
	var v RaftView
	if r.Code != 0 {
		return v, fmt.Errorf("cluster raft on %s: %s", a.Name, strings.TrimSpace(r.Stderr))
	}
	return v, json.Unmarshal([]byte(r.Stdout), &v)
}

// MembersView is `cluster members -o json`.
type MembersView struct {
	Members []struct {
		Name    string `json:"name"`
		Address string `json:"address"`
		Status  string `json:"status"`
	} `json:"members"`
}

// Alive counts alive members.
func (v MembersView) Alive() int {
	n := 0
	for _, m := range v.Members {
		if m.Status == "alive" {
			n++
		}
	}
	return n
}

// Members reads `cluster members -o json` from an agent.
func (c *Cluster) Members(a *Agent) (MembersView, error) {
	r := c.CLI(a, nil, "cluster", "members", "-o", "json", "--timeout", "3s")
	var v MembersView
	if r.Code != 0 {
		return v, fmt.Errorf("cluster members on %s: %s", a.Name, strings.TrimSpace(r.Stderr))
	}
	return v, json.Unmarshal([]byte(r.Stdout), &v)
}

// Leader returns the running agent that leads, as running agents see it.
func (c *Cluster) Leader() (*Agent, error) {
	for _, a := range c.Agents {
		if !a.Running() {
			continue
		}
		conn, err := client.Dial(a.GRPC())
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := conn.RaftStatus(ctx, &pb.RaftStatusRequest{})
		cancel()
		_ = conn.Close()
		if err != nil || st.GetLeader() == "" {
			continue
		}
		for _, b := range c.Agents {
			if b.Name == st.GetLeader() && b.Running() {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("no running agent knows a live leader")
}

// WaitFormed waits until every running agent sees all running agents alive
// and one leader with the expected voter and non-voter counts alive.
func (c *Cluster) WaitFormed(d time.Duration, voters, nonvoters int) {
	c.tb.Helper()
	running := 0
	for _, a := range c.Agents {
		if a.Running() {
			running++
		}
	}
	waitfor.Cond(c.tb, d, fmt.Sprintf("%d alive members, %d live voters and %d live non-voters", running, voters, nonvoters), func() (bool, string) {
		for _, a := range c.Agents {
			if !a.Running() {
				continue
			}
			m, err := c.Members(a)
			if err != nil {
				return false, err.Error()
			}
			if m.Alive() != running {
				return false, fmt.Sprintf("%s sees %d alive: %+v", a.Name, m.Alive(), m.Members)
			}
			v, err := c.Raft(a)
			if err != nil {
				return false, err.Error()
			}
			lv, ln := v.LiveVoters()
			if v.Leader == "" || lv != voters || ln != nonvoters {
				return false, fmt.Sprintf("%s: leader %q, %d live voters, %d live non-voters: %+v", a.Name, v.Leader, lv, ln, v.Servers)
			}
		}
		// The leader creates namespace default at birth, and every running
		// agent registers its Node, Ready: until then placement would not
		// consider it.
		for _, a := range c.Agents {
			if !a.Running() {
				continue
			}
			r := c.CLI(a, nil, "get", "namespace", "default", "--timeout", "3s")
			if r.Code != 0 {
				return false, "namespace default: " + r.Stderr
			}
			r = c.CLI(a, nil, "get", "nodes", "-o", "json", "--timeout", "3s")
			if r.Code != 0 {
				return false, "get nodes: " + r.Stderr
			}
			var list struct {
				Items []corev1.Node `json:"items"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
				return false, "get nodes: " + err.Error()
			}
			ready := map[string]bool{}
			for _, n := range list.Items {
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
						ready[n.Name] = true
					}
				}
			}
			for _, b := range c.Agents {
				if b.Running() && !ready[b.Name] {
					return false, fmt.Sprintf("node %s is not registered Ready", b.Name)
				}
			}
			return true, ""
		}
		return true, ""
	})
}

// Metric reads one unlabelled metric from an agent's /metrics.
func Metric(a *Agent, name string) (float64, error) {
	conn, err := net.DialTimeout("tcp", a.HTTP(), 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", a.HTTP())
	body, err := io.ReadAll(conn)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			_, err := fmt.Sscan(rest, &v)
			return v, err
		}
	}
	return 0, fmt.Errorf("metric %s not found on %s", name, a.Name)
}

// KillUnder SIGKILLs every process whose working directory lies under dir
// (the process runtime runs each container in its pod's directory).
func KillUnder(dir string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !strings.HasPrefix(cwd, dir+string(os.PathSeparator)) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// CountUnder counts the live processes whose working directory lies under
// dir and whose command line contains marker.
func CountUnder(dir, marker string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !strings.HasPrefix(cwd, dir+string(os.PathSeparator)) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), marker) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err == nil && strings.Contains(string(stat), ") Z ") {
			continue // a zombie waiting for its parent
		}
		n++
	}
	return n
}

// Dir is the cluster's directory (agents' data dirs and logs).
func (c *Cluster) Dir() string { return c.dir }
