// Command podstart measures apply-to-Running latency on the process
// runtime, beside its reference: a bare fork+exec of the same program,
// timed in the same run on the same machine. The reference is the floor
// (no store, no scheduling, no status report), not a competing system.
//
// It starts three real agents (bin/shoal, default settings) on
// 127.0.151.2-4 with bin/shoal-testapp on their PATH. Then, SHOAL_BENCH_REPS
// times (default 3):
//
//   - direct: SHOAL_BENCH_PODSTART_PODS times (default 100), os/exec Start
//     of `shoal-testapp sleep` until the process exists in /proc (Start
//     returns once the child has exec'd); each is killed after its sample;
//   - shoal: SHOAL_BENCH_PODSTART_PODS single-container pods running
//     `shoal-testapp sleep` (no probes, no requests), each applied in its
//     own transaction through n1's gRPC API one after the other; a pod's
//     latency runs from its apply's commit (the Txn returning) to the first
//     poll that sees status.phase Running with its container running (n1's
//     replica, not linearizable, polled every 20 ms). Then the pods are
//     deleted and the bench waits until their processes are gone.
//
// Last, once: a Deployment of 6 replicas, SIGKILL of the agent n3, and the
// time until its Node is NotReady and 6 pods are Ready on n1 and n2 again.
//
// The last line of output is `podstart ratio=` (shoal p50 / direct p50).
// `make bench` runs it through e2e/bench/all.sh; docs/bench.md explains
// the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/e2e/bench/internal/cli"
	"github.com/shoal-dev/shoal/e2e/bench/internal/knob"
	"github.com/shoal-dev/shoal/e2e/bench/internal/poll"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

const (
	agents = 3
	// pollEvery is the resolution of a shoal sample.
	pollEvery    = 20 * time.Millisecond
	formLimit    = 90 * time.Second
	runningLimit = 2 * time.Minute
	goneLimit    = time.Minute
	callTimeout  = 10 * time.Second
)

// config is what one run measures; flags fill it, each defaulting to an
// environment variable so that CI can shorten the run.
type config struct {
	shoalBin, testappBin string
	dir                  string
	keep                 bool
	pods, reps           int
}

func main() { cli.Main("podstart", cli.Stopped, parseConfig, run) }

func parseConfig(args []string) (config, error) {
	cfg := config{shoalBin: "bin/shoal", dir: os.TempDir(), pods: 100, reps: 3}
	if err := knob.Ints(map[string]*int{"SHOAL_BENCH_PODSTART_PODS": &cfg.pods, "SHOAL_BENCH_REPS": &cfg.reps}); err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("podstart", flag.ContinueOnError)
	fs.StringVar(&cfg.shoalBin, "shoal", knob.Env("SHOAL_BIN", cfg.shoalBin), "shoal binary (env SHOAL_BIN)")
	fs.StringVar(&cfg.testappBin, "testapp", os.Getenv("SHOAL_TESTAPP_BIN"), "shoal-testapp binary (env SHOAL_TESTAPP_BIN; default: next to the shoal binary)")
	fs.StringVar(&cfg.dir, "dir", knob.Env("SHOAL_BENCH_DIR", cfg.dir), "where to make the temporary data directory (env SHOAL_BENCH_DIR)")
	fs.BoolVar(&cfg.keep, "keep", os.Getenv("SHOAL_BENCH_KEEP") == "1", "keep data directories and logs (env SHOAL_BENCH_KEEP=1)")
	fs.IntVar(&cfg.pods, "pods", cfg.pods, "pods (and direct starts) per repetition (env SHOAL_BENCH_PODSTART_PODS)")
	fs.IntVar(&cfg.reps, "reps", cfg.reps, "repetitions (env SHOAL_BENCH_REPS)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case cfg.pods < 1:
		return cfg, errors.New("pods must be at least 1")
	case cfg.reps < 1:
		return cfg, errors.New("reps must be at least 1")
	}
	return cfg, nil
}

func run(ctx context.Context, cfg config, out, errOut io.Writer) (err error) {
	shoalBin, err := proc.Shoal(cfg.shoalBin)
	if err != nil {
		return err
	}
	testapp, err := proc.Testapp(cfg.testappBin, shoalBin)
	if err != nil {
		return err
	}
	dir, err := proc.MkdirTemp(cfg.dir, "podstart-")
	if err != nil {
		return err
	}
	c := &cluster{}
	defer func() {
		if err != nil && ctx.Err() == nil {
			proc.PrintTails(errOut, c.procs...)
		}
		proc.StopAll(errOut, "podstart", c.procs...)
		for _, cn := range c.conns {
			_ = cn.Close()
		}
		if n := harness.KillUnder(dir); n > 0 {
			fmt.Fprintf(errOut, "podstart: killed %d container processes left behind\n", n)
		}
		if cfg.keep {
			fmt.Fprintf(errOut, "podstart: data and logs kept in %s\n", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			fmt.Fprintln(errOut, "podstart: remove", dir+":", rerr)
		}
	}()

	fmt.Fprintf(out, "podstart: apply-to-Running on the process runtime against a bare fork+exec, on %d CPUs (%s)\n",
		runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "  shoal: %s, %d agents on 127.0.151.2-%d with default settings; pods run %s sleep\n", shoalBin, agents, agents+1, testapp)
	fmt.Fprintf(out, "  pods=%d per rep, reps=%d, each pod applied in its own transaction through n1; n1 polled every %s\n", cfg.pods, cfg.reps, pollEvery)
	if err := c.start(shoalBin, filepath.Dir(testapp), dir); err != nil {
		return err
	}
	if err := c.waitFormed(ctx); err != nil {
		return fmt.Errorf("cluster did not form: %w", err)
	}

	var shoalP50s, directP50s []time.Duration
	var shoalAll []time.Duration
	for rep := range cfg.reps {
		direct, err := directStarts(ctx, testapp, dir, cfg.pods)
		if err != nil {
			return fmt.Errorf("rep %d: direct: %w", rep+1, err)
		}
		printDist(out, fmt.Sprintf("rep %d direct fork+exec", rep+1), direct)
		lat, gone, err := c.podStarts(ctx, dir, rep, cfg.pods)
		if err != nil {
			return fmt.Errorf("rep %d: shoal: %w", rep+1, err)
		}
		printDist(out, fmt.Sprintf("rep %d shoal apply-to-Running", rep+1), lat)
		fmt.Fprintf(out, "  deleted the %d pods; their processes were gone %s after the delete committed\n", cfg.pods, stats.Ms(gone))
		shoalP50s = append(shoalP50s, stats.Median(lat))
		directP50s = append(directP50s, stats.Median(direct))
		shoalAll = append(shoalAll, lat...)
	}
	slo, shi := stats.Spread(shoalP50s)
	dlo, dhi := stats.Spread(directP50s)
	fmt.Fprintln(out, "summary (same machine, same run; medians over repetitions):")
	fmt.Fprintf(out, "shoal apply-to-Running: p50 %s (median of %d reps, spread %s-%s); over all %d pods p50=%s p90=%s p99=%s max=%s (goal p99 < 1s)\n",
		stats.Ms(stats.Median(shoalP50s)), len(shoalP50s), stats.Ms(slo), stats.Ms(shi), len(shoalAll),
		stats.Ms(stats.Median(shoalAll)), stats.Ms(stats.Percentile(shoalAll, 90)), stats.Ms(stats.Percentile(shoalAll, 99)), stats.Ms(stats.Percentile(shoalAll, 100)))
	fmt.Fprintf(out, "direct fork+exec: p50 %s (median of %d reps, spread %s-%s)\n",
		stats.Ms(stats.Median(directP50s)), len(directP50s), stats.Ms(dlo), stats.Ms(dhi))
	fmt.Fprintln(out, "note: the reference is a bare fork+exec of the same binary, the floor; shoal adds the commit, a claim and bind,")
	fmt.Fprintf(out, "      the kubelet's start and a status commit, and up to %s of polling.\n", pollEvery)
	h, err := c.heal(ctx, out)
	if err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	fmt.Fprintf(out, "heal after SIGKILL: node NotReady %s, %d replacement pods Ready on the survivors %s (goal under 15 s; Kubernetes' defaults take about 5 min 50 s)\n",
		stats.Ms(h.notReady), h.lost, stats.Ms(h.healed))
	fmt.Fprintf(out, "podstart ratio=%.1f (shoal p50 %s / direct p50 %s; below is better for shoal, the floor is 1)\n",
		stats.Ratio(float64(stats.Median(shoalP50s)), float64(stats.Median(directP50s))),
		stats.Ms(stats.Median(shoalP50s)), stats.Ms(stats.Median(directP50s)))
	return nil
}

func printDist(out io.Writer, what string, xs []time.Duration) {
	fmt.Fprintf(out, "%s: n=%d p50=%s p90=%s p99=%s max=%s\n", what, len(xs), stats.Ms(stats.Median(xs)),
		stats.Ms(stats.Percentile(xs, 90)), stats.Ms(stats.Percentile(xs, 99)), stats.Ms(stats.Percentile(xs, 100)))
}

// directStarts times n starts of `testapp sleep`: os/exec Start (which
// returns once the child has exec'd) until /proc shows the process. Each
// process is killed and reaped after its sample, outside the timing.
func directStarts(ctx context.Context, testapp, dir string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for range n {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		cmd := exec.Command(testapp, "sleep")
		cmd.Dir = dir
		t := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid)))
		d := time.Since(t)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if err != nil {
			return nil, fmt.Errorf("started process not in /proc: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// cluster is the three agent processes and a connection to each.
type cluster struct {
	procs []*proc.Proc
	conns []*client.Conn
}

func agentIP(i int) string { return fmt.Sprintf("127.0.151.%d", i+2) }

func (c *cluster) start(bin, pathDir, dir string) error {
	env := append(os.Environ(), "PATH="+pathDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	for i := range agents {
		name, ip := fmt.Sprintf("n%d", i+1), agentIP(i)
		data := filepath.Join(dir, name)
		if err := os.MkdirAll(data, 0o755); err != nil {
			return err
		}
		p := &proc.Proc{Name: "shoal " + name, Bin: bin, Env: env, LogPath: data + ".log",
			Args: []string{"agent", "--name", name, "--bind", ip, "--data-dir", data,
				"--bootstrap-expect", fmt.Sprint(agents), "--join", agentIP(0)}}
		c.procs = append(c.procs, p)
		if err := p.Start(); err != nil {
			return err
		}
		conn, err := client.Dial(net.JoinHostPort(ip, "7948"))
		if err != nil {
			return err
		}
		c.conns = append(c.conns, conn)
	}
	return nil
}

// waitFormed waits until every agent's Node is Ready and namespace default
// exists, read linearizably through each agent.
func (c *cluster) waitFormed(ctx context.Context) error {
	return poll.Until(ctx, formLimit, func(ctx context.Context) error {
		for i, conn := range c.conns {
			ro := &pb.ReadOptions{Linearizable: true}
			if _, err := conn.Get(ctx, &pb.GetRequest{Kind: "Namespace", Name: "default", Read: ro}); err != nil {
				return fmt.Errorf("n%d: namespace default: %w", i+1, err)
			}
			list, err := conn.List(ctx, &pb.ListRequest{Kind: "Node", Read: ro})
			if err != nil {
				return fmt.Errorf("n%d: list nodes: %w", i+1, err)
			}
			ready := 0
			for _, o := range list.GetObjects() {
				var n corev1.Node
				if object.Decode(o, &n) == nil {
					for _, cond := range n.Status.Conditions {
						if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
							ready++
						}
					}
				}
			}
			if ready != agents {
				return fmt.Errorf("n%d sees %d Nodes Ready, want %d", i+1, ready, agents)
			}
		}
		return nil
	})
}

func testPod(name string) (*pb.Object, error) {
	return object.FromTyped("Pod", &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "shoal-testapp", Command: []string{"shoal-testapp", "sleep"},
		}}},
	})
}

// podStarts applies n pods one after the other through n1, polls n1 until
// each runs, and returns each pod's apply-to-Running time; then it deletes
// them and returns how long after the delete's commit their processes
// were gone.
func (c *cluster) podStarts(ctx context.Context, dir string, rep, n int) ([]time.Duration, time.Duration, error) {
	conn := c.conns[0]
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("start-r%d-%03d", rep, i)
	}
	var mu sync.Mutex
	committed := map[string]time.Time{}
	running := map[string]time.Time{}

	pctx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan error, 1)
	go func() { pollDone <- pollRunning(pctx, conn, fmt.Sprintf("start-r%d-", rep), n, &mu, running) }()
	for _, name := range names {
		o, err := testPod(name)
		if err != nil {
			stopPoll()
			return nil, 0, err
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err = conn.Txn(cctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: o, MustCreate: true}}})
		t := time.Now()
		cancel()
		if err != nil {
			stopPoll()
			return nil, 0, fmt.Errorf("apply pod %s: %w", name, err)
		}
		mu.Lock()
		committed[name] = t
		mu.Unlock()
	}
	err := <-pollDone
	stopPoll()
	if err != nil {
		return nil, 0, err
	}
	var lat []time.Duration
	for _, name := range names {
		lat = append(lat, running[name].Sub(committed[name]))
	}

	req := &pb.TxnRequest{}
	for _, name := range names {
		req.Ops = append(req.Ops, &pb.Op{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Pod", Namespace: "default", Name: name}})
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err = conn.Txn(cctx, req)
	cancel()
	if err != nil {
		return nil, 0, fmt.Errorf("delete the pods: %w", err)
	}
	deleted := time.Now()
	if err := poll.Until(ctx, goneLimit, func(context.Context) error {
		if pids := harness.CountUnder(dir, ""); pids > 0 {
			return fmt.Errorf("%d container processes still running", pids)
		}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	return lat, time.Since(deleted), nil
}

// pollRunning lists the pods on conn every pollEvery and records when each
// of the n pods named prefix* is first seen Running with its container
// running. It returns when all are, or with an error at runningLimit.
func pollRunning(ctx context.Context, conn *client.Conn, prefix string, n int, mu *sync.Mutex, running map[string]time.Time) error {
	deadline := time.Now().Add(runningLimit)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, callTimeout)
		list, err := conn.List(lctx, &pb.ListRequest{Kind: "Pod", Namespace: "default"})
		cancel()
		now := time.Now()
		if err == nil {
			mu.Lock()
			for _, o := range list.GetObjects() {
				if !strings.HasPrefix(o.GetName(), prefix) {
					continue
				}
				if _, seen := running[o.GetName()]; seen {
					continue
				}
				var st corev1.PodStatus
				if object.StatusOf(o, &st) == nil && st.Phase == corev1.PodRunning &&
					len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Running != nil {
					running[o.GetName()] = now
				}
			}
			done := len(running)
			mu.Unlock()
			if done == n {
				return nil
			}
		}
		if now.After(deadline) {
			mu.Lock()
			done := len(running)
			mu.Unlock()
			return fmt.Errorf("after %s, %d of %d pods running (last list error: %v)", runningLimit, done, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
