// Command storebench measures Shoal's desired-state store against its
// reference, a 3-member etcd cluster started side by side on the same
// machine and driven by the same load generator:
//
//   - leader failover: SIGKILL the leader, then write through a surviving
//     member until a write succeeds; the time from the kill to that write;
//   - write throughput at 1 and 64 concurrent clients.
//
// Each figure is printed for both systems and as a ratio shoal/etcd; the
// last line of output is a ratio= line. It binds only 127.0.200.x (shoal)
// and 127.0.201.x (etcd), and kills every process it started on exit.
// `make bench` runs it through e2e/bench/store.sh; docs/bench.md explains
// the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/e2e/bench/internal/cli"
	"github.com/shoal-dev/shoal/e2e/bench/internal/knob"
	"github.com/shoal-dev/shoal/e2e/bench/internal/poll"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
)

// members is the size of both clusters.
const members = 3

const (
	// attemptTimeout bounds one write attempt while the leader is gone.
	attemptTimeout = 500 * time.Millisecond
	// attemptEvery is how often a new attempt starts while none has
	// succeeded: the resolution of a failover figure.
	attemptEvery = 5 * time.Millisecond
	// failoverLimit bounds one failover measurement.
	failoverLimit = 30 * time.Second
	// healthyLimit bounds the wait for a cluster to be whole again.
	healthyLimit = 90 * time.Second
	// writeTimeout bounds one write under load.
	writeTimeout = 5 * time.Second
	// keysPerClient is how many keys each load client cycles through.
	keysPerClient = 100
)

// config is what one run measures; flags fill it, each flag defaulting
// to an environment variable so that CI can shorten the run.
type config struct {
	shoalBin, etcdBin string
	dir               string
	keep              bool
	kills             int
	reps              int
	seconds           time.Duration
	warmup            time.Duration
	clients           []int
}

func defaultConfig() config {
	return config{
		shoalBin: "bin/shoal",
		etcdBin:  "etcd",
		dir:      os.TempDir(),
		kills:    20,
		reps:     3,
		seconds:  10 * time.Second,
		warmup:   2 * time.Second,
		clients:  []int{1, 64},
	}
}

func (c config) validate() error {
	switch {
	case c.kills < 0:
		return errors.New("kills must not be negative")
	case c.reps < 1:
		return errors.New("reps must be at least 1")
	case c.seconds <= 0:
		return errors.New("seconds must be positive")
	case c.warmup < 0:
		return errors.New("warmup must not be negative")
	}
	for _, n := range c.clients {
		if n < 1 {
			return fmt.Errorf("client count %d: must be at least 1", n)
		}
	}
	return nil
}

// cluster is one 3-member system under test. Members are numbered 0-2.
type cluster interface {
	name() string
	procList() []*proc.Proc
	start() error
	// put writes val under key through one member (which forwards it to
	// the leader when it is not the leader).
	put(ctx context.Context, member int, key string, val []byte) error
	leader(ctx context.Context) (int, error)
	// kill sends SIGKILL and returns without waiting.
	kill(member int) error
	// restart starts a killed member again on its data directory.
	restart(member int) error
	// healthy is nil when all members run, agree on a leader and take writes.
	healthy(ctx context.Context) error
	close() error
}

func main() { cli.Main("storebench", cli.Stopped, parseConfig, run) }

func parseConfig(args []string) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("storebench", flag.ContinueOnError)
	fs.StringVar(&cfg.shoalBin, "shoal", knob.Env("SHOAL_BIN", cfg.shoalBin), "shoal binary (env SHOAL_BIN)")
	fs.StringVar(&cfg.etcdBin, "etcd", knob.Env("ETCD_BIN", cfg.etcdBin), "etcd binary (env ETCD_BIN)")
	fs.StringVar(&cfg.dir, "dir", knob.Env("SHOAL_BENCH_DIR", cfg.dir), "where to make the temporary data directory (env SHOAL_BENCH_DIR)")
	fs.BoolVar(&cfg.keep, "keep", os.Getenv("SHOAL_BENCH_KEEP") == "1", "keep data directories and logs (env SHOAL_BENCH_KEEP=1)")
	fs.IntVar(&cfg.kills, "kills", cfg.kills, "leader kills per system, 0 to skip failover (env SHOAL_BENCH_KILLS)")
	fs.IntVar(&cfg.reps, "reps", cfg.reps, "repetitions of each throughput run (env SHOAL_BENCH_REPS)")
	seconds := fs.String("seconds", knob.Env("SHOAL_BENCH_SECONDS", "10"), "measured load per run: seconds or a duration (env SHOAL_BENCH_SECONDS)")
	warmup := fs.Duration("warmup", cfg.warmup, "load before measuring (env SHOAL_BENCH_WARMUP)")
	clients := fs.String("clients", knob.Env("SHOAL_BENCH_CLIENTS", "1,64"), "concurrent clients, comma-separated (env SHOAL_BENCH_CLIENTS)")
	if err := knob.Ints(map[string]*int{"SHOAL_BENCH_KILLS": &cfg.kills, "SHOAL_BENCH_REPS": &cfg.reps}); err != nil {
		return cfg, err
	}
	if err := knob.Durations(map[string]*time.Duration{"SHOAL_BENCH_WARMUP": warmup}); err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.warmup = *warmup
	var err error
	if cfg.seconds, err = parseSeconds(*seconds); err != nil {
		return cfg, err
	}
	cfg.clients = nil
	for _, f := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return cfg, fmt.Errorf("clients %q: %w", *clients, err)
		}
		cfg.clients = append(cfg.clients, n)
	}
	return cfg, cfg.validate()
}

// parseSeconds takes "10" (seconds) or a Go duration ("1m", "2.5s").
func parseSeconds(s string) (time.Duration, error) {
	d, err := knob.ParseSeconds(s)
	if err != nil {
		return 0, fmt.Errorf("seconds %q: want a number of seconds or a duration", s)
	}
	return d, nil
}

func run(ctx context.Context, cfg config, out, errOut io.Writer) (err error) {
	shoalBin, err := proc.Shoal(cfg.shoalBin)
	if err != nil {
		return err
	}
	etcdBin, err := exec.LookPath(cfg.etcdBin)
	if err != nil {
		return fmt.Errorf("etcd binary: %w (install it with: apt-get install etcd-server etcd-client)", err)
	}
	dir, err := os.MkdirTemp(cfg.dir, "storebench-")
	if err != nil {
		return err
	}
	defer func() {
		if cfg.keep {
			fmt.Fprintf(errOut, "storebench: data and logs kept in %s\n", dir)
			return
		}
		if rerr := os.RemoveAll(dir); rerr != nil {
			fmt.Fprintln(errOut, "storebench: remove", dir+":", rerr)
		}
	}()

	sh, err := newShoal(shoalBin, filepath.Join(dir, "shoal"))
	if err != nil {
		return err
	}
	et, err := newEtcd(etcdBin, filepath.Join(dir, "etcd"))
	if err != nil {
		return err
	}
	systems := []cluster{sh, et}
	defer func() {
		if err != nil && ctx.Err() == nil {
			for _, c := range systems {
				proc.PrintTails(errOut, c.procList()...)
			}
		}
		for _, c := range systems {
			if cerr := c.close(); cerr != nil {
				fmt.Fprintln(errOut, "storebench: stop", c.name()+":", cerr)
			}
		}
	}()

	def := consensus.DefaultConfig()
	fmt.Fprintf(out, "storebench: shoal vs etcd, 3 members each, side by side on %d CPUs (%s)\n", runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "  shoal: %s on 127.0.200.2-4, raft heartbeat %s election %s (consensus.DefaultConfig)\n", shoalBin, def.HeartbeatTimeout, def.ElectionTimeout)
	fmt.Fprintf(out, "  etcd:  %s (%s) on 127.0.201.2-4, heartbeat 100ms election 1000ms (etcd defaults)\n", etcdBin, etcdVersion(etcdBin))
	fmt.Fprintf(out, "  kills=%d reps=%d load=%s after %s warmup, clients=%v, values of %d bytes\n",
		cfg.kills, cfg.reps, cfg.seconds, cfg.warmup, cfg.clients, len(payload(0)))

	for _, c := range systems {
		if err := c.start(); err != nil {
			return err
		}
	}
	for _, c := range systems {
		if err := poll.Until(ctx, healthyLimit, c.healthy); err != nil {
			return fmt.Errorf("%s cluster did not form: %w", c.name(), err)
		}
	}

	b := &bench{cfg: cfg, out: out}
	tput, err := b.throughput(ctx, sh, et)
	if err != nil {
		return err
	}
	var fo [2][]time.Duration
	if cfg.kills > 0 {
		if fo, err = b.failover(ctx, sh, et); err != nil {
			return err
		}
	}
	b.summary(fo, tput)
	return nil
}

// bench runs the measurements and prints as it goes.
type bench struct {
	cfg config
	out io.Writer
	seq int // makes every failover write change the stored value
}

// failover kills the leader of each system cfg.kills times, alternating
// which system goes first, and returns the samples of shoal and etcd.
func (b *bench) failover(ctx context.Context, sh, et cluster) ([2][]time.Duration, error) {
	var res [2][]time.Duration
	fmt.Fprintf(b.out, "failover: SIGKILL the leader, then through a survivor start a write every %s (each with a %s timeout) until one succeeds\n", attemptEvery, attemptTimeout)
	for k := range b.cfg.kills {
		order := []int{0, 1}
		if k%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			c := []cluster{sh, et}[i]
			d, note, err := b.failoverOnce(ctx, c)
			if err != nil {
				return res, fmt.Errorf("%s failover %d: %w", c.name(), k+1, err)
			}
			res[i] = append(res[i], d)
			fmt.Fprintf(b.out, "  %-5s kill %2d: %s (%s)\n", c.name(), k+1, stats.Ms(d), note)
		}
	}
	for i, name := range []string{"shoal", "etcd"} {
		lo, hi := stats.Spread(res[i])
		fmt.Fprintf(b.out, "failover %-5s n=%d median=%s p90=%s p99=%s min=%s max=%s\n", name, len(res[i]),
			stats.Ms(stats.Median(res[i])), stats.Ms(stats.Percentile(res[i], 90)), stats.Ms(stats.Percentile(res[i], 99)), stats.Ms(lo), stats.Ms(hi))
	}
	return res, nil
}

// failoverOnce measures one leader kill on a whole cluster and leaves the
// cluster whole again, so that its recovery does not load the machine
// while the other system is measured.
func (b *bench) failoverOnce(ctx context.Context, c cluster) (time.Duration, string, error) {
	if err := poll.Until(ctx, healthyLimit, c.healthy); err != nil {
		return 0, "", fmt.Errorf("not whole before the kill: %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	leader, err := c.leader(lctx)
	cancel()
	if err != nil {
		return 0, "", err
	}
	survivor := (leader + 1) % members

	t0 := time.Now()
	if err := c.kill(leader); err != nil {
		return 0, "", err
	}
	d, attempts, err := b.firstWrite(ctx, c, survivor, t0)
	if err != nil {
		return 0, "", err
	}
	if err := c.restart(leader); err != nil {
		return 0, "", err
	}
	if err := poll.Until(ctx, healthyLimit, c.healthy); err != nil {
		return 0, "", fmt.Errorf("not whole after restarting member %d: %w", leader+1, err)
	}
	return d, fmt.Sprintf("killed member %d, wrote through member %d, %d attempts", leader+1, survivor+1, attempts), nil
}

// firstWrite writes through member until a write succeeds and returns the
// time from t0 to that success. A new attempt starts every attemptEvery
// whether or not earlier ones have returned: a follower that still
// believes in the dead leader holds a write until its timeout (etcd does),
// and waiting for that timeout before retrying would add up to
// attemptTimeout to the figure of whichever system holds writes.
func (b *bench) firstWrite(ctx context.Context, c cluster, member int, t0 time.Time) (time.Duration, int, error) {
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	type result struct {
		err  error
		done time.Time
	}
	results := make(chan result)
	launch := func() {
		b.seq++
		val := payload(b.seq)
		wg.Go(func() {
			actx, acancel := context.WithTimeout(mctx, attemptTimeout)
			err := c.put(actx, member, "failover", val)
			acancel()
			select {
			case results <- result{err: err, done: time.Now()}:
			case <-mctx.Done():
			}
		})
	}
	tick := time.NewTicker(attemptEvery)
	defer tick.Stop()
	attempts := 1
	launch()
	var lastErr error
	for {
		select {
		case r := <-results:
			if r.err == nil {
				return r.done.Sub(t0), attempts, nil
			}
			lastErr = r.err
		case <-tick.C:
			if time.Since(t0) > failoverLimit {
				return 0, attempts, fmt.Errorf("no write succeeded within %s of the kill; last error: %v", failoverLimit, lastErr)
			}
			attempts++
			launch()
		case <-ctx.Done():
			return 0, attempts, ctx.Err()
		}
	}
}

// loadResult is one throughput run.
type loadResult struct {
	writes, errors int
	rate           float64 // successful writes per second
	p50, p99       time.Duration
}

// throughput runs each client count cfg.reps times on both systems,
// alternating which goes first, and returns results[clientsIndex][system].
func (b *bench) throughput(ctx context.Context, sh, et cluster) ([][2][]loadResult, error) {
	res := make([][2][]loadResult, len(b.cfg.clients))
	fmt.Fprintf(b.out, "throughput: client i writes through member (leader+i) mod 3, own %d keys per client, %s per write at most\n", keysPerClient, writeTimeout)
	for r := range b.cfg.reps {
		for ci, n := range b.cfg.clients {
			order := []int{0, 1}
			if (r+ci)%2 == 1 {
				order = []int{1, 0}
			}
			for _, i := range order {
				c := []cluster{sh, et}[i]
				lr, err := b.load(ctx, c, n, r)
				if err != nil {
					return nil, fmt.Errorf("%s load c=%d: %w", c.name(), n, err)
				}
				res[ci][i] = append(res[ci][i], lr)
				fmt.Fprintf(b.out, "  %-5s c=%-3d rep %d: %.0f writes/s p50=%s p99=%s errors=%d\n",
					c.name(), n, r+1, lr.rate, stats.Ms(lr.p50), stats.Ms(lr.p99), lr.errors)
			}
		}
	}
	for ci, n := range b.cfg.clients {
		for i, name := range []string{"shoal", "etcd"} {
			rates, p50s, p99s, errs := collect(res[ci][i])
			lo, hi := stats.Spread(rates)
			fmt.Fprintf(b.out, "throughput %-5s c=%d: %.0f writes/s (median of %d, spread %.0f-%.0f) p50=%s p99=%s errors=%d\n",
				name, n, stats.Median(rates), len(rates), lo, hi, stats.Ms(stats.Median(p50s)), stats.Ms(stats.Median(p99s)), errs)
		}
	}
	return res, nil
}

func collect(rs []loadResult) (rates []float64, p50s, p99s []time.Duration, errs int) {
	for _, r := range rs {
		rates = append(rates, r.rate)
		p50s = append(p50s, r.p50)
		p99s = append(p99s, r.p99)
		errs += r.errors
	}
	return rates, p50s, p99s, errs
}

// load runs n clients writing as fast as they can for warmup+seconds and
// counts the writes that complete inside the measured window.
func (b *bench) load(ctx context.Context, c cluster, n, rep int) (loadResult, error) {
	if err := poll.Until(ctx, healthyLimit, c.healthy); err != nil {
		return loadResult{}, fmt.Errorf("not whole before the load: %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	leader, err := c.leader(lctx)
	cancel()
	if err != nil {
		return loadResult{}, err
	}
	from := time.Now().Add(b.cfg.warmup)
	end := from.Add(b.cfg.seconds)
	lat := make([][]time.Duration, n)
	errs := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		member := (leader + i) % members
		wg.Go(func() {
			for w := 0; ; w++ {
				start := time.Now()
				if !start.Before(end) || ctx.Err() != nil {
					return
				}
				wctx, cancel := context.WithTimeout(ctx, writeTimeout)
				err := c.put(wctx, member, fmt.Sprintf("r%d-c%d-k%d", rep, i, w%keysPerClient), payload(w))
				cancel()
				done := time.Now()
				if done.Before(from) || done.After(end) {
					continue
				}
				if err != nil {
					errs[i]++
					continue
				}
				lat[i] = append(lat[i], done.Sub(start))
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return loadResult{}, ctx.Err()
	}
	var all []time.Duration
	lr := loadResult{}
	for i := range n {
		all = append(all, lat[i]...)
		lr.errors += errs[i]
	}
	lr.writes = len(all)
	lr.rate = float64(lr.writes) / b.cfg.seconds.Seconds()
	lr.p50, lr.p99 = stats.Percentile(all, 50), stats.Percentile(all, 99)
	return lr, nil
}

// summary prints every ratio; the last line is the last client count's
// throughput ratio.
func (b *bench) summary(fo [2][]time.Duration, tput [][2][]loadResult) {
	fmt.Fprintln(b.out, "summary (shoal/etcd on the same machine in the same run; medians):")
	if len(fo[0]) > 0 {
		fmt.Fprintf(b.out, "failover ratio=%.2f (shoal median %s / etcd median %s over %d kills each; below 1 is better for shoal, goal <= 1)\n",
			stats.Ratio(float64(stats.Median(fo[0])), float64(stats.Median(fo[1]))), stats.Ms(stats.Median(fo[0])), stats.Ms(stats.Median(fo[1])), len(fo[0]))
	} else {
		fmt.Fprintln(b.out, "failover skipped (kills=0)")
	}
	for ci, n := range b.cfg.clients {
		s, _, _, _ := collect(tput[ci][0])
		e, _, _, _ := collect(tput[ci][1])
		goal := ""
		if n == 64 {
			goal = ", goal >= 1"
		}
		fmt.Fprintf(b.out, "throughput c=%d ratio=%.2f (shoal %.0f / etcd %.0f writes/s over %d reps; above 1 is better for shoal%s)\n",
			n, stats.Ratio(stats.Median(s), stats.Median(e)), stats.Median(s), stats.Median(e), len(s), goal)
	}
}
