// Command ctrbench measures pod start on the containerd runtime beside its
// reference, `ctr run` of the same image on the same containerd daemon,
// timed in the same run on the same machine (the containerd issue's
// acceptance bench).
//
// It starts a private containerd (containerdtest.Start: its own root,
// state and socket under the run's directory) and imports the
// shoal-testapp image (made from bin/shoal-testapp as `make testimage`
// makes it, or the archive SHOAL_BENCH_TESTIMAGE names) into two
// namespaces of it, one for the agent and one for ctr. It starts one agent (bin/shoal, --bootstrap-expect 1, bound to
// 127.0.153.2, --runtime containerd on that daemon with bridge shoalb0 and
// pod CIDR 10.244.201.0/24, no proxy, no DNS) and waits until its Node is
// Ready. After one unmeasured start on each side, SHOAL_BENCH_REPS times
// (default 3):
//
//   - sequential, SHOAL_BENCH_CONTAINERD_PODS starts (default 50) on each
//     side one after the other, the two sides taking turns start by start
//     (ctr, shoal, shoal, ctr, ...) so that both meet the same moments of
//     a shared machine's load. ctr: `ctr -a SOCK -n NS run -d --log-uri
//     file://LOG IMAGE ID /shoal-testapp sleep`, timed from the call until
//     ctr exits (run -d returns once the task has started). Shoal: a
//     single-container pod running the same command (image present,
//     imagePullPolicy Never), created through the agent's gRPC API and
//     timed from the call until a watch on the agent delivers it with
//     phase Running and its container running. Then everything is deleted
//     (shoal: until the pods, their containers and their network
//     namespaces are gone);
//   - parallel, the same number of starts with SHOAL_BENCH_CONTAINERD_PARALLEL
//     (default 10) in flight: that many workers, each starting one and
//     waiting until it runs before the next; one side after the other,
//     taking turns to go first. Rate = starts / the time from the first
//     call until the last is running.
//
// Printed: n, median, p90, p99, min and max of both, per repetition and
// over all of them, the start rates, then `containerd start rate ratio=`
// (shoal / ctr, medians over the repetitions) and, last, `containerd
// apply-to-Running ratio=` (the median over repetitions of shoal's median /
// that of ctr's; goal at most 1.5, and shoal's p99 over all its sequential
// starts under 1 s: reported, not asserted). `make bench` runs
// it through e2e/bench/all.sh (part containerd); docs/bench.md explains the
// figures.
//
// It needs root, containerd, runc, ctr and the CNI plugins
// (apt-get install containerd runc containernetworking-plugins) and says
// so when one is missing; it installs nothing. On exit, also on SIGINT, it
// deletes the pods through the agent, stops the agent and the daemon
// (whose Stop deletes whatever is left in its namespaces), and removes the
// bridge, the agent's nat rule for the pod CIDR (agents leave it, as they
// leave their pods), any network namespace mount or masquerade rule of a
// pod left behind, and its directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime/containerd/containerdtest"
	"github.com/shoal-dev/shoal/e2e/bench/internal/cli"
	"github.com/shoal-dev/shoal/e2e/bench/internal/knob"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
)

// The run's names and addresses, chosen clear of the e2e tests' (shoal-t*,
// shoale2e0, 10.244.77.0/24, 127.0.N.x for small N) and of the other
// benches' (127.0.150-152.x, 127.0.0.2).
const (
	agentIP = "127.0.153.2"
	bridge  = "shoalb0"
	podCIDR = "10.244.201.0/24"
	// image is what the archive holds and both sides run.
	image = containerdtest.TestAppImage
	// podLabel marks the bench's pods (key=value).
	podLabelKey, podLabelValue = "shoal-bench", "ctrbench"
)

// command is what every container runs, under ctr and in the pods.
var command = []string{"/shoal-testapp", "sleep"}

// config is what one run measures; flags fill it, each defaulting to an
// environment variable so that CI can shorten the run.
type config struct {
	shoalBin, testappBin, archive, ctrBin string
	dir                                   string
	keep                                  bool
	pods, parallel, reps                  int
}

func main() { cli.Main("ctrbench", cli.Stopped, parseConfig, run) }

func parseConfig(args []string) (config, error) {
	cfg := config{shoalBin: "bin/shoal", ctrBin: "ctr", dir: os.TempDir(), pods: 50, parallel: 10, reps: 3}
	// Not SHOAL_BENCH_PODS: the placement part reads it (1000 pods), and
	// all.sh runs every part with one environment.
	if err := knob.Ints(map[string]*int{"SHOAL_BENCH_CONTAINERD_PODS": &cfg.pods,
		"SHOAL_BENCH_CONTAINERD_PARALLEL": &cfg.parallel, "SHOAL_BENCH_REPS": &cfg.reps}); err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("ctrbench", flag.ContinueOnError)
	fs.StringVar(&cfg.shoalBin, "shoal", knob.Env("SHOAL_BIN", cfg.shoalBin), "shoal binary (env SHOAL_BIN)")
	fs.StringVar(&cfg.testappBin, "testapp", os.Getenv("SHOAL_TESTAPP_BIN"), "static shoal-testapp binary the image is made of (env SHOAL_TESTAPP_BIN; default: next to the shoal binary)")
	fs.StringVar(&cfg.archive, "image", os.Getenv("SHOAL_BENCH_TESTIMAGE"), "OCI archive of "+image+" to import, such as bin/shoal-testapp.oci.tar from make testimage (env SHOAL_BENCH_TESTIMAGE; default: made from -testapp as make testimage does)")
	fs.StringVar(&cfg.ctrBin, "ctr", knob.Env("SHOAL_CTR_BIN", cfg.ctrBin), "ctr binary (env SHOAL_CTR_BIN)")
	fs.StringVar(&cfg.dir, "dir", knob.Env("SHOAL_BENCH_DIR", cfg.dir), "where to make the temporary directory (env SHOAL_BENCH_DIR)")
	fs.BoolVar(&cfg.keep, "keep", os.Getenv("SHOAL_BENCH_KEEP") == "1", "keep logs (env SHOAL_BENCH_KEEP=1)")
	fs.IntVar(&cfg.pods, "pods", cfg.pods, "starts per side, per phase and repetition (env SHOAL_BENCH_CONTAINERD_PODS)")
	fs.IntVar(&cfg.parallel, "parallel", cfg.parallel, "starts in flight in the rate phase (env SHOAL_BENCH_CONTAINERD_PARALLEL)")
	fs.IntVar(&cfg.reps, "reps", cfg.reps, "repetitions (env SHOAL_BENCH_REPS)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case cfg.pods < 1:
		return cfg, errors.New("pods must be at least 1")
	case cfg.parallel < 1:
		return cfg, errors.New("parallel must be at least 1")
	case cfg.reps < 1:
		return cfg, errors.New("reps must be at least 1")
	}
	return cfg, nil
}

// rep is one repetition's samples.
type rep struct {
	ctrSeq, shoalSeq   []time.Duration // per start, sequential
	ctrPar, shoalPar   parallelRun
	shoalGone, ctrGone time.Duration // delete until gone, after the sequential phase
}

func run(ctx context.Context, cfg config, out, errOut io.Writer) (err error) {
	if err := preflight(cfg.ctrBin); err != nil {
		return err
	}
	shoalBin, err := proc.Shoal(cfg.shoalBin)
	if err != nil {
		return err
	}
	ctrBin, err := exec.LookPath(cfg.ctrBin)
	if err != nil {
		return err
	}
	dir, err := proc.MkdirTemp(cfg.dir, "ctrbench-")
	if err != nil {
		return err
	}
	e := &env{dir: dir, errOut: errOut}
	defer func() {
		if err != nil && ctx.Err() == nil {
			e.printTails()
		}
		e.cleanup()
		if cfg.keep {
			fmt.Fprintf(errOut, "ctrbench: logs kept in %s\n", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			fmt.Fprintln(errOut, "ctrbench: remove", dir+":", rerr)
		}
	}()
	archive := cfg.archive
	if archive == "" {
		testapp, err := proc.Testapp(cfg.testappBin, shoalBin)
		if err != nil {
			return err
		}
		if archive, err = writeImage(testapp, dir); err != nil {
			return err
		}
	}

	fmt.Fprintf(out, "containerd: apply-to-Running on the containerd runtime against `ctr run` of the same image, on %d CPUs (%s)\n",
		runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	if err := e.startDaemon(ctx, archive); err != nil {
		return err
	}
	fmt.Fprintf(out, "  %s; %s; image %s imported into namespaces %s (shoal) and %s (ctr) in %s\n",
		versionLine(ctx, "containerd", "--version"), versionLine(ctx, "runc", "--version"), image, e.shoalNS, e.ctrNS, stats.Ms(e.importTook))
	if err := e.startAgent(ctx, shoalBin); err != nil {
		return err
	}
	fmt.Fprintf(out, "  shoal: %s, one agent on %s, --runtime containerd, bridge %s, pod CIDR %s, no proxy, no DNS; Node Ready after %s\n",
		shoalBin, agentIP, bridge, podCIDR, stats.Ms(e.readyTook))
	fmt.Fprintf(out, "  ctr: %s -a %s -n %s run -d --log-uri file://LOG %s ID %s\n", ctrBin, e.daemon.Address, e.ctrNS, image, strings.Join(command, " "))
	fmt.Fprintf(out, "  pods=%d per phase and rep, parallel=%d, reps=%d; both sides start with no container of theirs running\n", cfg.pods, cfg.parallel, cfg.reps)

	c := &ctrRef{bin: ctrBin, addr: e.daemon.Address, ns: e.ctrNS, logDir: e.ctrLogs, client: e.ctrClient}
	s := &shoalSide{env: e}
	if err := s.watch(ctx); err != nil {
		return err
	}
	defer s.stopWatch()
	ctrCost, err := c.overhead(ctx, 10)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  ctr's own cost, `ctr version` against the daemon: median %s of 10 (part of every ctr run sample)\n", stats.Ms(ctrCost))
	// One unmeasured start on each side: the first pod creates the bridge.
	if _, err := c.start(ctx, "ctr-warm"); err != nil {
		return fmt.Errorf("ctr warm-up: %w", err)
	}
	if _, err := c.removeAll(ctx); err != nil {
		return err
	}
	if _, err := s.start(ctx, "shoal-warm"); err != nil {
		return fmt.Errorf("shoal warm-up: %w", err)
	}
	if _, err := s.removeAll(ctx); err != nil {
		return err
	}

	var reps []rep
	for i := range cfg.reps {
		r, err := runRep(ctx, out, c, s, i, cfg)
		if err != nil {
			return fmt.Errorf("rep %d: %w", i+1, err)
		}
		reps = append(reps, r)
	}
	summarize(out, reps, cfg)
	return nil
}

// runRep runs one repetition. In the sequential phase the two take turns
// start by start, in the order ctr, shoal, shoal, ctr, ... (shoal first in
// even repetitions), so that both meet the same moments of a shared
// machine's load; then both are deleted. In the rate phase ctr goes first
// in odd repetitions (from 1), shoal in even ones.
func runRep(ctx context.Context, out io.Writer, c *ctrRef, s *shoalSide, i int, cfg config) (rep, error) {
	var r rep
	tag := fmt.Sprintf("r%d", i+1)
	ctrFirst := i%2 == 0
	for j := range cfg.pods {
		turns := [2]func() error{
			func() error {
				d, err := c.start(ctx, fmt.Sprintf("ctr-%ss-%03d", tag, j))
				if err == nil {
					r.ctrSeq = append(r.ctrSeq, d)
				}
				return err
			},
			func() error {
				d, err := s.start(ctx, fmt.Sprintf("shoal-%ss-%03d", tag, j))
				if err == nil {
					r.shoalSeq = append(r.shoalSeq, d)
				}
				return err
			},
		}
		if (i+j)%2 == 1 {
			turns[0], turns[1] = turns[1], turns[0]
		}
		for _, turn := range turns {
			if err := turn(); err != nil {
				return r, fmt.Errorf("sequential: %w", err)
			}
		}
	}
	var err error
	if r.ctrGone, err = c.removeAll(ctx); err != nil {
		return r, err
	}
	if r.shoalGone, err = s.removeAll(ctx); err != nil {
		return r, err
	}
	par := []func() error{
		func() (err error) {
			if r.ctrPar, err = c.parallel(ctx, tag+"p", cfg.pods, cfg.parallel); err != nil {
				return fmt.Errorf("ctr parallel: %w", err)
			}
			_, err = c.removeAll(ctx)
			return err
		},
		func() (err error) {
			if r.shoalPar, err = s.parallel(ctx, tag+"p", cfg.pods, cfg.parallel); err != nil {
				return fmt.Errorf("shoal parallel: %w", err)
			}
			_, err = s.removeAll(ctx)
			return err
		},
	}
	if !ctrFirst {
		par[0], par[1] = par[1], par[0]
	}
	for _, f := range par {
		if err := f(); err != nil {
			return r, err
		}
	}
	first := "ctr"
	if !ctrFirst {
		first = "shoal"
	}
	fmt.Fprintf(out, "rep %d (%s first):\n", i+1, first)
	printDist(out, "  ctr run, sequential (taking turns with shoal)", r.ctrSeq)
	printDist(out, "  shoal apply-to-Running, sequential (taking turns with ctr)", r.shoalSeq)
	fmt.Fprintf(out, "    deleted: ctr containers gone in %s, shoal pods with their containers and network namespaces in %s\n",
		stats.Ms(r.ctrGone), stats.Ms(r.shoalGone))
	printRate(out, "  ctr run", r.ctrPar, cfg.parallel)
	printRate(out, "  shoal", r.shoalPar, cfg.parallel)
	return r, nil
}

func summarize(out io.Writer, reps []rep, cfg config) {
	var ctrAll, shoalAll, ctrParAll, shoalParAll, ctrP50s, shoalP50s []time.Duration
	var ctrRates, shoalRates, latRatios, rateRatios []float64
	for _, r := range reps {
		ctrAll, shoalAll = append(ctrAll, r.ctrSeq...), append(shoalAll, r.shoalSeq...)
		ctrP50s, shoalP50s = append(ctrP50s, stats.Median(r.ctrSeq)), append(shoalP50s, stats.Median(r.shoalSeq))
		ctrParAll, shoalParAll = append(ctrParAll, r.ctrPar.lat...), append(shoalParAll, r.shoalPar.lat...)
		ctrRates, shoalRates = append(ctrRates, r.ctrPar.rate()), append(shoalRates, r.shoalPar.rate())
		latRatios = append(latRatios, stats.Ratio(float64(stats.Median(r.shoalSeq)), float64(stats.Median(r.ctrSeq))))
		rateRatios = append(rateRatios, stats.Ratio(r.shoalPar.rate(), r.ctrPar.rate()))
	}
	fmt.Fprintf(out, "summary (same machine, same run; %d reps):\n", len(reps))
	printDist(out, "ctr run, sequential, all reps", ctrAll)
	printDist(out, "shoal apply-to-Running, sequential, all reps", shoalAll)
	printDist(out, fmt.Sprintf("ctr run, %d in parallel, per start, all reps", cfg.parallel), ctrParAll)
	printDist(out, fmt.Sprintf("shoal apply-to-Running, %d in parallel, per pod, all reps", cfg.parallel), shoalParAll)
	clo, chi := stats.Spread(ctrRates)
	slo, shi := stats.Spread(shoalRates)
	fmt.Fprintf(out, "start rate, %d in parallel (median of %d reps; spread): ctr run %.1f containers/s (%.1f-%.1f), shoal %.1f pods/s (%.1f-%.1f)\n",
		cfg.parallel, len(reps), stats.Median(ctrRates), clo, chi, stats.Median(shoalRates), slo, shi)
	p99 := stats.Percentile(shoalAll, 99)
	lrlo, lrhi := stats.Spread(latRatios)
	rrlo, rrhi := stats.Spread(rateRatios)
	fmt.Fprintln(out, "note: a pod also gets what ctr run does not do: the create's commit, placement and a bind commit, a network")
	fmt.Fprintln(out, "      namespace attached with CNI (loopback, bridge with host-local IPAM, masquerade rules), resolv.conf and the")
	fmt.Fprintln(out, "      status commit that the watch delivers; ctr run pays for starting the ctr process (see ctr's own cost above).")
	fmt.Fprintf(out, "containerd start rate ratio=%.2f (shoal %.1f pods/s / ctr run %.1f containers/s, %d in parallel, median of %d reps, per-rep spread %.2f-%.2f; above 1 is better for shoal)\n",
		stats.Ratio(stats.Median(shoalRates), stats.Median(ctrRates)), stats.Median(shoalRates), stats.Median(ctrRates),
		cfg.parallel, len(reps), rrlo, rrhi)
	shoalP50, ctrP50 := stats.Median(shoalP50s), stats.Median(ctrP50s)
	ratio := stats.Ratio(float64(shoalP50), float64(ctrP50))
	fmt.Fprintf(out, "containerd apply-to-Running ratio=%.2f (shoal median %s / ctr run median %s, sequential, medians of %d reps of %d starts, per-rep ratios %.2f-%.2f; below is better for shoal; goal <= 1.5: %s; shoal p99 over all %d %s, goal < 1s: %s)\n",
		ratio, stats.Ms(shoalP50), stats.Ms(ctrP50), len(reps), cfg.pods, lrlo, lrhi,
		met(ratio <= 1.5), len(shoalAll), stats.Ms(p99), met(p99 < time.Second))
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func printDist(out io.Writer, what string, xs []time.Duration) {
	lo, hi := stats.Spread(xs)
	fmt.Fprintf(out, "%s: n=%d median=%s p90=%s p99=%s min=%s max=%s\n", what, len(xs), stats.Ms(stats.Median(xs)),
		stats.Ms(stats.Percentile(xs, 90)), stats.Ms(stats.Percentile(xs, 99)), stats.Ms(lo), stats.Ms(hi))
}

func printRate(out io.Writer, what string, p parallelRun, parallel int) {
	fmt.Fprintf(out, "%s, %d in parallel: %d running in %s = %.1f/s (per start median %s, p99 %s)\n",
		what, parallel, len(p.lat), stats.Ms(p.wall), p.rate(), stats.Ms(stats.Median(p.lat)), stats.Ms(stats.Percentile(p.lat, 99)))
}

// versionLine is the first line of `bin args...`, or what went wrong.
func versionLine(ctx context.Context, bin string, args ...string) string {
	b, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return bin + ": " + err.Error()
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}
