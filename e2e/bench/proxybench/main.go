// Command proxybench measures Shoal's userspace service proxy beside its
// references: TCP throughput (iperf3, 1 and 8 streams) and the rate of
// short HTTP connections (wrk, one request per connection) through the
// proxy, through a direct connection to the backend, and through HAProxy
// (Debian package, TCP mode) on the same backends, in the same run.
//
//   - backends: one agent process (bin/shoal, --bootstrap-expect 1, process
//     runtime) bound to 127.0.0.2 with --service-cidr 10.98.0.0/24 and
//     --dns-port -1 runs two Deployments of one pod each: `iperf3 -s -p 5201
//     -B $POD_IP` and `shoal-testapp serve --port 8080` (POD_IP from the
//     downward API; on the process runtime a pod's IP is the node's,
//     127.0.0.2), applied with `shoal apply -f`;
//   - shoal: ClusterIP services 10.98.0.10:5201 (iperf3) and 10.98.0.11:80
//     (targetPort 8080), served by that agent's proxy;
//   - direct: 127.0.0.2:5201 and 127.0.0.2:8080;
//   - haproxy: `haproxy -f CFG -db`, mode tcp, frontends 127.0.0.3:5201 and
//     127.0.0.3:8080 with one server line each to the same backends,
//     nbthread = CPUs, maxconn 100000 (less if the open
//     files limit is lower), no logging.
//
// SHOAL_BENCH_REPS times (default 3), each test runs once through every
// path, the paths taking turns to go first:
//
//   - iperf3 -c HOST -p PORT -t SECONDS -P 1 -J, then -P 8: bits/s of
//     end.sum_received;
//   - wrk -t2 -c32 -d SECONDS --latency -H 'Connection: close'
//     http://HOST:PORT/: requests/s, latency percentiles, socket errors.
//
// During each run it also reads the CPU time of the agent and of HAProxy
// from /proc, to tell a proxy that is slow from one that is starved.
//
// Per path it prints the median over the reps with the spread, then ratio
// lines: shoal/direct (goal >= 0.8) and shoal/haproxy (goal >= 1) for each
// test. `make bench` runs it through e2e/bench/all.sh (part proxy);
// docs/bench.md explains the figures. It needs root (the agent adds a local
// route for the service CIDR) and iperf3, wrk and haproxy
// (apt-get install haproxy iperf3 wrk).
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
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/e2e/bench/internal/cli"
	"github.com/shoal-dev/shoal/e2e/bench/internal/knob"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
)

// The addresses of the run. The service CIDR is a /24 of its own so that
// the bench's local route and ClusterIPs stay clear of other agents on the
// host (their default is 10.96.0.0/12; a /24 route is more specific).
const (
	agentIP     = "127.0.0.2" // the agent, and so the pods' IP
	haproxyIP   = "127.0.0.3"
	serviceCIDR = "10.98.0.0/24"
	iperfVIP    = "10.98.0.10"
	httpVIP     = "10.98.0.11"
	iperfPort   = 5201
	httpPort    = 8080 // the backend's port, and HAProxy's
	httpSvcPort = 80   // the Service's port (targetPort 8080)
)

// config is what one run measures; flags fill it, each defaulting to an
// environment variable so that CI can shorten the run.
type config struct {
	shoalBin, testappBin         string
	iperfBin, wrkBin, haproxyBin string
	dir                          string
	keep                         bool
	reps, wrkThreads, wrkConns   int
	seconds                      time.Duration
	haproxySplice                bool
}

func main() { cli.Main("proxybench", cli.Stopped, parseConfig, run) }

func parseConfig(args []string) (config, error) {
	cfg := config{shoalBin: "bin/shoal", iperfBin: "iperf3", wrkBin: "wrk", haproxyBin: "haproxy",
		dir: os.TempDir(), reps: 3, wrkThreads: 2, wrkConns: 32, seconds: 10 * time.Second}
	if err := knob.Ints(map[string]*int{"SHOAL_BENCH_REPS": &cfg.reps, "SHOAL_BENCH_PROXY_WRK_THREADS": &cfg.wrkThreads,
		"SHOAL_BENCH_PROXY_WRK_CONNS": &cfg.wrkConns}); err != nil {
		return cfg, err
	}
	if err := knob.Seconds(map[string]*time.Duration{"SHOAL_BENCH_SECONDS": &cfg.seconds}); err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("proxybench", flag.ContinueOnError)
	fs.StringVar(&cfg.shoalBin, "shoal", knob.Env("SHOAL_BIN", cfg.shoalBin), "shoal binary (env SHOAL_BIN)")
	fs.StringVar(&cfg.testappBin, "testapp", os.Getenv("SHOAL_TESTAPP_BIN"), "shoal-testapp binary (env SHOAL_TESTAPP_BIN; default: next to the shoal binary)")
	fs.StringVar(&cfg.iperfBin, "iperf3", knob.Env("SHOAL_IPERF3_BIN", cfg.iperfBin), "iperf3 binary (env SHOAL_IPERF3_BIN; Debian package iperf3)")
	fs.StringVar(&cfg.wrkBin, "wrk", knob.Env("SHOAL_WRK_BIN", cfg.wrkBin), "wrk binary (env SHOAL_WRK_BIN; Debian package wrk)")
	fs.StringVar(&cfg.haproxyBin, "haproxy", knob.Env("SHOAL_HAPROXY_BIN", cfg.haproxyBin), "haproxy binary (env SHOAL_HAPROXY_BIN; Debian package haproxy)")
	fs.StringVar(&cfg.dir, "dir", knob.Env("SHOAL_BENCH_DIR", cfg.dir), "where to make the temporary directory (env SHOAL_BENCH_DIR)")
	fs.BoolVar(&cfg.keep, "keep", os.Getenv("SHOAL_BENCH_KEEP") == "1", "keep data directories and logs (env SHOAL_BENCH_KEEP=1)")
	fs.IntVar(&cfg.reps, "reps", cfg.reps, "repetitions (env SHOAL_BENCH_REPS)")
	fs.DurationVar(&cfg.seconds, "seconds", cfg.seconds, "length of one iperf3 or wrk run (env SHOAL_BENCH_SECONDS, seconds or a Go duration)")
	fs.IntVar(&cfg.wrkThreads, "wrk-threads", cfg.wrkThreads, "wrk -t (env SHOAL_BENCH_PROXY_WRK_THREADS)")
	fs.IntVar(&cfg.wrkConns, "wrk-conns", cfg.wrkConns, "wrk -c (env SHOAL_BENCH_PROXY_WRK_CONNS)")
	fs.BoolVar(&cfg.haproxySplice, "haproxy-splice", os.Getenv("SHOAL_BENCH_PROXY_HAPROXY_SPLICE") == "1",
		"add option splice-auto to HAProxy's defaults (env SHOAL_BENCH_PROXY_HAPROXY_SPLICE=1; off: the package's behaviour)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case cfg.reps < 1:
		return cfg, errors.New("reps must be at least 1")
	case cfg.seconds < time.Second:
		return cfg, errors.New("seconds must be at least 1s")
	case cfg.wrkThreads < 1 || cfg.wrkConns < cfg.wrkThreads:
		return cfg, errors.New("wrk-threads must be at least 1 and wrk-conns at least wrk-threads")
	}
	cfg.seconds = cfg.seconds.Round(time.Second) // iperf3 and wrk take whole seconds
	return cfg, nil
}

// path is one way from the load generator to the backends.
type path struct {
	name                string // direct, shoal, haproxy
	iperfHost, httpHost string
	iperfPort, httpPort int
}

// test is one load generator setting, run through every path.
type test struct {
	name  string // as printed: "iperf3 1 stream"
	unit  string // of value / scale
	run   func(context.Context, path) (sample, error)
	scale float64 // value / scale is printed in unit
}

// sample is one run of a test through one path.
type sample struct {
	value  float64 // bits/s or requests/s
	detail string
}

func run(ctx context.Context, cfg config, out, errOut io.Writer) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: the agent's proxy adds a local route for " + serviceCIDR + " on lo")
	}
	bins := map[string]*string{"iperf3": &cfg.iperfBin, "wrk": &cfg.wrkBin, "haproxy": &cfg.haproxyBin}
	for name, bin := range bins {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return fmt.Errorf("%s: %w (apt-get install haproxy iperf3 wrk)", name, err)
		}
		*bin = p
	}
	shoalBin, err := proc.Shoal(cfg.shoalBin)
	if err != nil {
		return err
	}
	testapp, err := proc.Testapp(cfg.testappBin, shoalBin)
	if err != nil {
		return err
	}
	dir, err := proc.MkdirTemp(cfg.dir, "proxybench-")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, dir: dir, shoalBin: shoalBin, testapp: testapp}
	defer func() {
		if err != nil && ctx.Err() == nil {
			b.printLogs(errOut)
		}
		b.stop(errOut)
		if cfg.keep {
			fmt.Fprintf(errOut, "proxybench: data and logs kept in %s\n", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			fmt.Fprintln(errOut, "proxybench:", rerr)
		}
	}()

	secs := int(cfg.seconds / time.Second)
	fmt.Fprintf(out, "proxybench: the service proxy against a direct connection and HAProxy, on %d CPUs (%s)\n",
		runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "  backends: pods of one agent (%s) on %s: iperf3 -s -p %d, shoal-testapp serve --port %d (one log line per request)\n",
		shoalBin, agentIP, iperfPort, httpPort)
	fmt.Fprintf(out, "  direct: %s:%d and %s:%d; shoal: ClusterIPs %s:%d and %s:%d (--service-cidr %s); haproxy: %s:%d and %s:%d\n",
		agentIP, iperfPort, agentIP, httpPort, iperfVIP, iperfPort, httpVIP, httpSvcPort, serviceCIDR,
		haproxyIP, iperfPort, haproxyIP, httpPort)
	fmt.Fprintf(out, "  %s: mode tcp, nbthread %d, maxconn %d, no logging%s\n", b.haproxyVersion(ctx), runtime.NumCPU(), haproxyMaxconn(),
		map[bool]string{true: ", option splice-auto", false: ", no splicing (the default)"}[cfg.haproxySplice])
	fmt.Fprintf(out, "  load: %s -t %d -P 1|8 -J; %s -t%d -c%d -d%ds --latency -H 'Connection: close'; reps=%d, paths take turns to go first\n",
		cfg.iperfBin, secs, cfg.wrkBin, cfg.wrkThreads, cfg.wrkConns, secs, cfg.reps)

	if err := b.startAgent(ctx); err != nil {
		return fmt.Errorf("shoal: %w", err)
	}
	if err := b.startHAProxy(ctx); err != nil {
		return fmt.Errorf("haproxy: %w", err)
	}
	paths := []path{
		{name: "direct", iperfHost: agentIP, iperfPort: iperfPort, httpHost: agentIP, httpPort: httpPort},
		{name: "shoal", iperfHost: iperfVIP, iperfPort: iperfPort, httpHost: httpVIP, httpPort: httpSvcPort},
		{name: "haproxy", iperfHost: haproxyIP, iperfPort: iperfPort, httpHost: haproxyIP, httpPort: httpPort},
	}
	for _, p := range paths {
		if err := b.waitPath(ctx, p); err != nil {
			return fmt.Errorf("%s path: %w", p.name, err)
		}
	}
	fmt.Fprintln(out, "  every path answered: an HTTP GET and a 1 s iperf3 run through each")

	tests := []test{
		{name: "iperf3 1 stream", unit: "Gbit/s", scale: 1e9,
			run: func(ctx context.Context, p path) (sample, error) { return b.iperf(ctx, p, 1) }},
		{name: "iperf3 8 streams", unit: "Gbit/s", scale: 1e9,
			run: func(ctx context.Context, p path) (sample, error) { return b.iperf(ctx, p, 8) }},
		{name: "wrk short connections", unit: "req/s", scale: 1,
			run: b.wrk},
	}
	fig := map[string]map[string][]float64{} // test, path -> values
	for _, t := range tests {
		fig[t.name] = map[string][]float64{}
	}
	for rep := range cfg.reps {
		for _, t := range tests {
			for k := range paths {
				p := paths[(k+rep)%len(paths)]
				cpu := b.cpuMeter()
				s, err := t.run(ctx, p)
				if err != nil {
					return fmt.Errorf("rep %d %s %s: %w", rep+1, t.name, p.name, err)
				}
				fig[t.name][p.name] = append(fig[t.name][p.name], s.value)
				fmt.Fprintf(out, "rep %d %s %s: %s %s; %s; %s\n", rep+1, t.name, p.name,
					num(s.value/t.scale), t.unit, s.detail, cpu.read())
			}
		}
	}

	fmt.Fprintf(out, "summary (same machine, same run; medians over %d reps, spread min-max):\n", cfg.reps)
	for _, t := range tests {
		var parts []string
		for _, p := range paths {
			xs := fig[t.name][p.name]
			lo, hi := stats.Spread(xs)
			parts = append(parts, fmt.Sprintf("%s %s %s (%s-%s)", p.name, num(stats.Median(xs)/t.scale), t.unit,
				num(lo/t.scale), num(hi/t.scale)))
		}
		fmt.Fprintf(out, "%s: %s\n", t.name, strings.Join(parts, ", "))
	}
	for _, ref := range []struct {
		name string
		goal float64
	}{{"direct", 0.8}, {"haproxy", 1}} {
		for _, t := range tests {
			sh, rv := stats.Median(fig[t.name]["shoal"]), stats.Median(fig[t.name][ref.name])
			r := stats.Ratio(sh, rv)
			met := "met"
			if !(r >= ref.goal) {
				met = "not met"
			}
			refName := map[string]string{"direct": "direct", "haproxy": "HAProxy"}[ref.name]
			fmt.Fprintf(out, "proxy %s vs %s ratio=%.2f (shoal %s / %s %s %s; above 1 is better for shoal, goal >= %g: %s)\n",
				t.name, refName, r, num(sh/t.scale), ref.name, num(rv/t.scale), t.unit, ref.goal, met)
		}
	}
	return nil
}

// num prints a figure with three significant digits or more.
func num(x float64) string {
	switch {
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	default:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
}
