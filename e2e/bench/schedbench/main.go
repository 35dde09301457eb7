// Command schedbench measures how fast Shoal's distributed scheduler places
// pods, beside its reference: the raw commit rate of the desired-state
// store, measured in the same run, on the same cluster, through the same
// write path the scheduler's binds take. A shared-state scheduler commits
// every bind through the store, so the store's commit rate is the limit it
// can reach; the ratio says how much of it the scheduler gets.
//
// It starts SHOAL_BENCH_AGENTS agents (default 100) in this one process with
// the sim runtime, in-memory Raft (raft.InmemTransport and an in-memory log)
// and in-memory gossip (memberlist.MockNetwork). Each agent's gRPC API still
// listens on TCP, on its own 127.0.150.x with the default ports, because
// followers forward writes to the leader over gRPC. Then, SHOAL_BENCH_REPS
// times (default 3):
//
//   - raw writes: SHOAL_BENCH_PODS (default 1000) small ConfigMap PUTs, one
//     goroutine per agent writing its share one after the other, each sent
//     the way that agent's scheduler sends a bind (see rawWrites);
//   - placement: SHOAL_BENCH_PODS pods (requests 100m CPU and 64Mi, no node
//     selector) created in one transaction through a follower's gRPC API, as
//     a user's apply, timed from the moment the leader's replica holds them
//     to the moment it holds every one of them bound to a node.
//
// Between repetitions the pods and ConfigMaps are deleted and the cluster
// left to go quiet. The last line of output is `placement ratio=`. `make
// bench` runs it through e2e/bench/all.sh; docs/bench.md explains the
// figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/e2e/bench/internal/cli"
	"github.com/shoal-dev/shoal/e2e/bench/internal/knob"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
)

// Every agent advertises the same capacity; every pod asks for the same.
const (
	agentCPUMillis   = 4000
	agentMemoryBytes = 16 << 30
	podCPUMillis     = 100
	podMemoryBytes   = 64 << 20
	// podsPerNode is the pod count every node advertises (agent.maxPodsPerNode).
	podsPerNode = 110
)

// config is what one run measures; flags fill it, each defaulting to an
// environment variable so that CI can shorten the run.
type config struct {
	agents     int
	pods       int
	reps       int
	voters     int
	dir        string
	formLimit  time.Duration
	placeLimit time.Duration
	log        bool
	// cpuProfile, when set, receives a CPU profile of the first placement.
	cpuProfile string
}

func defaultConfig() config {
	return config{
		agents:     100,
		pods:       1000,
		reps:       3,
		dir:        os.TempDir(),
		formLimit:  5 * time.Minute,
		placeLimit: 3 * time.Minute,
	}
}

// perNode is how many bench pods fit on one node.
func perNode() int {
	return min(agentCPUMillis/podCPUMillis, agentMemoryBytes/podMemoryBytes, podsPerNode)
}

func (c config) validate() error {
	switch {
	case c.agents < 3 || c.agents > 253:
		return fmt.Errorf("agents %d: want 3 to 253 (one 127.0.150.x each, 3 to bootstrap)", c.agents)
	case c.pods < 1:
		return errors.New("pods must be at least 1")
	case c.pods > c.agents*perNode():
		return fmt.Errorf("pods %d: %d agents hold at most %d of them", c.pods, c.agents, c.agents*perNode())
	case c.reps < 1:
		return errors.New("reps must be at least 1")
	case c.voters < 0 || (c.voters > 0 && c.voters%2 == 0):
		return fmt.Errorf("voters %d: want an odd number, or 0 for the autopilot's choice", c.voters)
	case c.formLimit <= 0 || c.placeLimit <= 0:
		return errors.New("time limits must be positive")
	}
	return nil
}

// main: the agents run in this process, so an interruption leaves none.
func main() { cli.Main("schedbench", "interrupted", parseConfig, run) }

func parseConfig(args []string) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("schedbench", flag.ContinueOnError)
	if err := knob.Ints(map[string]*int{"SHOAL_BENCH_AGENTS": &cfg.agents, "SHOAL_BENCH_PODS": &cfg.pods,
		"SHOAL_BENCH_REPS": &cfg.reps, "SHOAL_BENCH_VOTERS": &cfg.voters}); err != nil {
		return cfg, err
	}
	if err := knob.Durations(map[string]*time.Duration{"SHOAL_BENCH_PLACE_TIMEOUT": &cfg.placeLimit}); err != nil {
		return cfg, err
	}
	cfg.dir = knob.Env("SHOAL_BENCH_DIR", cfg.dir)
	fs.IntVar(&cfg.agents, "agents", cfg.agents, "agents in this process (env SHOAL_BENCH_AGENTS)")
	fs.IntVar(&cfg.pods, "pods", cfg.pods, "pods placed, and raw writes, per repetition (env SHOAL_BENCH_PODS)")
	fs.IntVar(&cfg.reps, "reps", cfg.reps, "repetitions (env SHOAL_BENCH_REPS)")
	fs.IntVar(&cfg.voters, "voters", cfg.voters, "Raft voters; 0 lets the autopilot choose (env SHOAL_BENCH_VOTERS)")
	fs.StringVar(&cfg.dir, "dir", cfg.dir, "where to make the temporary data directory (env SHOAL_BENCH_DIR)")
	fs.DurationVar(&cfg.formLimit, "form-timeout", cfg.formLimit, "how long the cluster may take to form")
	fs.DurationVar(&cfg.placeLimit, "place-timeout", cfg.placeLimit, "how long one placement may take (env SHOAL_BENCH_PLACE_TIMEOUT)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the first placement to this file")
	fs.BoolVar(&cfg.log, "log", os.Getenv("SHOAL_BENCH_LOG") == "1", "agents log warnings to stderr (env SHOAL_BENCH_LOG=1)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func run(ctx context.Context, cfg config, out, errOut io.Writer) (err error) {
	dir, err := os.MkdirTemp(cfg.dir, "schedbench-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			fmt.Fprintln(errOut, "schedbench: remove", dir+":", rerr)
		}
	}()

	wantVoters := consensus.AutopilotConfig{Voters: cfg.voters}.DesiredVoters(cfg.agents)
	fmt.Fprintf(out, "schedbench: placement rate against the raw store commit rate, on %d CPUs (%s)\n",
		runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "  %d agents in one process on 127.0.150.2-%d: sim runtime, in-memory Raft log and transport, in-memory gossip; %d voters\n",
		cfg.agents, cfg.agents+1, wantVoters)
	fmt.Fprintf(out, "  each agent: cpu %dm, memory %dGi, %d pods; each pod requests cpu %dm, memory %dMi, no node selector\n",
		agentCPUMillis, agentMemoryBytes>>30, podsPerNode, podCPUMillis, podMemoryBytes>>20)
	fmt.Fprintf(out, "  pods=%d raw writes=%d reps=%d\n", cfg.pods, cfg.pods, cfg.reps)

	formStart := time.Now()
	c, err := startCluster(cfg, dir, errOut)
	if err != nil {
		return err
	}
	defer func() {
		if n := c.stop(10 * time.Second); n > 0 {
			// memberlist's mock transport blocks a send to a peer that has
			// stopped reading; the process exit ends those goroutines.
			fmt.Fprintf(errOut, "schedbench: %d agents still stopping after 10s (gossip sends to stopped mock peers block); exiting anyway\n", n)
		}
	}()
	if err := c.waitFormed(ctx, cfg.formLimit, wantVoters, out); err != nil {
		return fmt.Errorf("cluster did not form: %w", err)
	}
	fmt.Fprintf(out, "  cluster formed in %.1fs: leader %s, %d Nodes Ready, every agent sees %d alive by gossip\n",
		time.Since(formStart).Seconds(), c.name(c.leader()), cfg.agents, cfg.agents)

	b := &bench{cfg: cfg, c: c, out: out}
	var raws []rawResult
	var places []placeResult
	for rep := range cfg.reps {
		if err := c.waitQuiet(ctx, quietLimit); err != nil {
			return fmt.Errorf("rep %d: before raw writes: %w", rep+1, err)
		}
		rr, err := b.rawWrites(ctx, rep)
		if err != nil {
			return fmt.Errorf("rep %d: raw writes: %w", rep+1, err)
		}
		raws = append(raws, rr)
		fmt.Fprintf(out, "rep %d raw writes: %d in %.2fs = %s writes/s (per write p50=%s p99=%s, errors=%d)\n",
			rep+1, rr.writes, rr.elapsed.Seconds(), rate(rr.rate), stats.Ms(rr.p50), stats.Ms(rr.p99), rr.errors)
		if err := c.waitQuiet(ctx, quietLimit); err != nil {
			return fmt.Errorf("rep %d: before placement: %w", rep+1, err)
		}
		stopProfile, err := startProfile(cfg.cpuProfile, rep)
		if err != nil {
			return err
		}
		pr, err := b.placement(ctx, rep)
		stopProfile()
		if err != nil {
			return fmt.Errorf("rep %d: placement: %w", rep+1, err)
		}
		places = append(places, pr)
		b.printPlacement(rep, pr)
		if len(pr.overCapacity) > 0 {
			return fmt.Errorf("rep %d: nodes over capacity: %v", rep+1, pr.overCapacity)
		}
		if rep+1 < cfg.reps {
			if err := b.clear(ctx, rep); err != nil {
				return fmt.Errorf("rep %d: delete: %w", rep+1, err)
			}
		}
	}
	b.summary(raws, places)
	return nil
}

// rate prints a rate with two decimals below 10, as a whole number above.
func rate(x float64) string {
	if x < 10 {
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.0f", x)
}

// startProfile starts a CPU profile into path for the first repetition;
// the returned func stops it.
func startProfile(path string, rep int) (func(), error) {
	if path == "" || rep > 0 {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// bench runs the measurements on one cluster and prints as it goes.
type bench struct {
	cfg config
	c   *cluster
	out io.Writer
}

func (b *bench) printPlacement(rep int, pr placeResult) {
	status := "all placed"
	if pr.placed < pr.pods {
		status = fmt.Sprintf("TIMED OUT with %d of %d placed", pr.placed, pr.pods)
	}
	fmt.Fprintf(b.out, "rep %d placement: %d pods in %.2fs = %s pods/s (%s; per pod commit-to-bound p50=%s p99=%s)\n",
		rep+1, pr.placed, pr.elapsed.Seconds(), rate(pr.rate), status, stats.Ms(pr.p50), stats.Ms(pr.p99))
	perTxn := stats.Ratio(float64(pr.placed), float64(pr.bindTxns))
	fmt.Fprintf(b.out, "  log entries while placing: %d = %d bind txns (%.1f pods each) + %d other writes (kubelet status, events) + %d refused or no-op (binds that no longer fit or were already made)\n",
		pr.entries, pr.bindTxns, perTxn, pr.otherWrites, pr.refused)
	capacity := "no node over capacity"
	if len(pr.overCapacity) > 0 {
		capacity = fmt.Sprintf("OVER CAPACITY: %v", pr.overCapacity)
	}
	fmt.Fprintf(b.out, "  pods per node: min %d max %d over %d nodes; %s\n", pr.minPerNode, pr.maxPerNode, b.cfg.agents, capacity)
	if pr.approximate {
		fmt.Fprintln(b.out, "  (the leader's event ring overran: log entry counts are approximate)")
	}
}

// summary prints medians and spreads; its last line is the ratio.
func (b *bench) summary(raws []rawResult, places []placeResult) {
	var rawRates, placeRates []float64
	for _, r := range raws {
		rawRates = append(rawRates, r.rate)
	}
	for _, p := range places {
		placeRates = append(placeRates, p.rate)
	}
	partial := ""
	for _, p := range places {
		if p.placed < p.pods {
			partial = fmt.Sprintf(" (some repetitions timed out after %s: their rate is what they placed in that time)", b.cfg.placeLimit)
		}
	}
	rlo, rhi := stats.Spread(rawRates)
	plo, phi := stats.Spread(placeRates)
	fmt.Fprintln(b.out, "summary (same cluster, same run; medians over repetitions):")
	fmt.Fprintf(b.out, "raw store writes: %s writes/s (median of %d, spread %s-%s), %d writes from %d agents at once, each agent's in sequence\n",
		rate(stats.Median(rawRates)), len(rawRates), rate(rlo), rate(rhi), b.cfg.pods, b.cfg.agents)
	fmt.Fprintf(b.out, "placement: %s pods/s (median of %d, spread %s-%s), %d pods onto %d agents%s\n",
		rate(stats.Median(placeRates)), len(placeRates), rate(plo), rate(phi), b.cfg.pods, b.cfg.agents, partial)
	fmt.Fprintln(b.out, "note: a claimer commits up to 100 binds of one round as one transaction (one log entry),")
	fmt.Fprintln(b.out, "      so placed pods/s can exceed raw writes/s and the ratio can exceed 1.")
	r := stats.Ratio(stats.Median(placeRates), stats.Median(rawRates))
	rs := fmt.Sprintf("%.2f", r)
	if r < 0.1 {
		rs = fmt.Sprintf("%.4f", r)
	}
	fmt.Fprintf(b.out, "placement ratio=%s (placed %s pods/s / raw %s writes/s; above 1 is better for shoal, goal >= 0.5)\n",
		rs, rate(stats.Median(placeRates)), rate(stats.Median(rawRates)))
}
