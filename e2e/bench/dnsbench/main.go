// Command dnsbench measures cluster DNS beside its reference: queries per
// second and latency of a Shoal agent's DNS server holding 1,000 services,
// and of CoreDNS (built from source) serving the same 1,000 A records from
// a zone file, loaded by Debian's dnsperf in the same run.
//
//   - shoal: one agent process (bin/shoal, --bootstrap-expect 1) bound to
//     127.0.152.2 with --dns-port 10053 and --dns-upstream 127.0.0.1:1 (so
//     nothing leaves the machine); 1,000 ClusterIP services svc-N in
//     namespace default, each with an explicit clusterIP 10.96.x.y, applied
//     in one `shoal apply -f`.
//   - coredns: CoreDNS on 127.0.152.3:10053 with the file plugin serving
//     zone cluster.local holding the same A records (TTL 5 like Shoal's), the
//     errors plugin and nothing else: no log, no cache. With
//     SHOAL_BENCH_DNS_CACHE=1 (the default) a second CoreDNS on 127.0.152.4
//     adds the cache plugin.
//
// Before measuring, every one of the 1,000 names is asked of every server
// and the answers must agree. Then SHOAL_BENCH_REPS times (default 3), the
// servers taking turns to go first:
//
//   - throughput: dnsperf -c CLIENTS -T THREADS -q OUTSTANDING -l SECONDS,
//     no -Q limit, over the 1,000 names shuffled with a fixed seed;
//     queries/s and dnsperf's average latency;
//   - latency: dnsperf -v at a fixed moderate rate (-Q, default 2000 q/s),
//     whose per-query lines give p50, p99 and max.
//
// The last line is `dns qps ratio=` (shoal / coredns, median of the reps).
// `make bench` runs it through e2e/bench/all.sh (part dns); docs/bench.md
// explains the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/e2e/bench/internal/cli"
	"github.com/shoal-dev/shoal/e2e/bench/internal/knob"
	"github.com/shoal-dev/shoal/e2e/bench/internal/poll"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

const (
	shoalIP      = "127.0.152.2"
	corednsIP    = "127.0.152.3"
	cachedIP     = "127.0.152.4"
	formLimit    = 60 * time.Second
	recordsLimit = 60 * time.Second
)

// config is what one run measures; flags fill it, each defaulting to an
// environment variable so that CI can shorten the run.
type config struct {
	shoalBin, corednsBin, dnsperfBin string
	dir                              string
	keep, cache                      bool
	services, reps, port             int
	clients, threads, outstanding    int
	seconds, probeDuration           time.Duration
	probeRate                        int
}

func main() { cli.Main("dnsbench", cli.Stopped, parseConfig, run) }

func parseConfig(args []string) (config, error) {
	cfg := config{shoalBin: "bin/shoal", dnsperfBin: "dnsperf", dir: os.TempDir(), cache: true,
		services: 1000, reps: 3, port: 10053, clients: 8, threads: 2, outstanding: 100,
		seconds: 10 * time.Second, probeDuration: 5 * time.Second, probeRate: 2000}
	if err := knob.Ints(map[string]*int{
		"SHOAL_BENCH_DNS_SERVICES": &cfg.services, "SHOAL_BENCH_REPS": &cfg.reps, "SHOAL_BENCH_DNS_PORT": &cfg.port,
		"SHOAL_BENCH_DNS_CLIENTS": &cfg.clients, "SHOAL_BENCH_DNS_THREADS": &cfg.threads,
		"SHOAL_BENCH_DNS_OUTSTANDING": &cfg.outstanding, "SHOAL_BENCH_DNS_PROBE_QPS": &cfg.probeRate,
	}); err != nil {
		return cfg, err
	}
	if err := knob.Seconds(map[string]*time.Duration{"SHOAL_BENCH_SECONDS": &cfg.seconds, "SHOAL_BENCH_DNS_PROBE_SECONDS": &cfg.probeDuration}); err != nil {
		return cfg, err
	}
	if v := os.Getenv("SHOAL_BENCH_DNS_CACHE"); v != "" {
		cfg.cache = v == "1"
	}
	fs := flag.NewFlagSet("dnsbench", flag.ContinueOnError)
	fs.StringVar(&cfg.shoalBin, "shoal", knob.Env("SHOAL_BIN", cfg.shoalBin), "shoal binary (env SHOAL_BIN)")
	fs.StringVar(&cfg.corednsBin, "coredns", os.Getenv("SHOAL_COREDNS_BIN"),
		"coredns binary (env SHOAL_COREDNS_BIN; default: built once with go install "+corednsModule+"@"+corednsVersion+" into the cache)")
	fs.StringVar(&cfg.dnsperfBin, "dnsperf", knob.Env("SHOAL_DNSPERF_BIN", cfg.dnsperfBin), "dnsperf binary (env SHOAL_DNSPERF_BIN; Debian package dnsperf)")
	fs.StringVar(&cfg.dir, "dir", knob.Env("SHOAL_BENCH_DIR", cfg.dir), "where to make the temporary directory (env SHOAL_BENCH_DIR)")
	fs.BoolVar(&cfg.keep, "keep", os.Getenv("SHOAL_BENCH_KEEP") == "1", "keep data directories and logs (env SHOAL_BENCH_KEEP=1)")
	fs.BoolVar(&cfg.cache, "cache", cfg.cache, "also run CoreDNS with the cache plugin (env SHOAL_BENCH_DNS_CACHE=0 turns it off)")
	fs.IntVar(&cfg.services, "services", cfg.services, "services, and A records in the zone (env SHOAL_BENCH_DNS_SERVICES)")
	fs.IntVar(&cfg.reps, "reps", cfg.reps, "repetitions (env SHOAL_BENCH_REPS)")
	fs.IntVar(&cfg.port, "port", cfg.port, "DNS port of every server (env SHOAL_BENCH_DNS_PORT)")
	fs.IntVar(&cfg.clients, "clients", cfg.clients, "dnsperf -c (env SHOAL_BENCH_DNS_CLIENTS)")
	fs.IntVar(&cfg.threads, "threads", cfg.threads, "dnsperf -T (env SHOAL_BENCH_DNS_THREADS)")
	fs.IntVar(&cfg.outstanding, "outstanding", cfg.outstanding, "dnsperf -q (env SHOAL_BENCH_DNS_OUTSTANDING)")
	fs.DurationVar(&cfg.seconds, "seconds", cfg.seconds, "length of a throughput run (env SHOAL_BENCH_SECONDS, seconds or a Go duration)")
	fs.DurationVar(&cfg.probeDuration, "probe-seconds", cfg.probeDuration, "length of a latency run (env SHOAL_BENCH_DNS_PROBE_SECONDS)")
	fs.IntVar(&cfg.probeRate, "probe-qps", cfg.probeRate, "rate of a latency run, dnsperf -Q (env SHOAL_BENCH_DNS_PROBE_QPS)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case cfg.services < 1 || cfg.services > 50000:
		return cfg, errors.New("services must be from 1 to 50000")
	case cfg.reps < 1:
		return cfg, errors.New("reps must be at least 1")
	case cfg.clients < 1 || cfg.threads < 1 || cfg.outstanding < 1 || cfg.probeRate < 1:
		return cfg, errors.New("clients, threads, outstanding and probe-qps must be at least 1")
	case cfg.seconds < time.Second || cfg.probeDuration < time.Second:
		return cfg, errors.New("seconds and probe-seconds must be at least 1s")
	}
	return cfg, nil
}

// server is one DNS server under test.
type server struct {
	name string // shoal, coredns, coredns+cache
	ip   string
	port int
	proc *proc.Proc
}

func (s *server) addr() string { return net.JoinHostPort(s.ip, strconv.Itoa(s.port)) }

func run(ctx context.Context, cfg config, out, errOut io.Writer) (err error) {
	shoalBin, err := proc.Shoal(cfg.shoalBin)
	if err != nil {
		return err
	}
	dnsperf, err := exec.LookPath(cfg.dnsperfBin)
	if err != nil {
		return fmt.Errorf("dnsperf: %w (apt-get install dnsperf)", err)
	}
	corednsBin := cfg.corednsBin
	if corednsBin == "" {
		if corednsBin, err = buildCoreDNS(ctx, out); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp(cfg.dir, "dnsbench-")
	if err != nil {
		return err
	}
	var servers []*server
	defer func() {
		for _, s := range servers {
			if err != nil && ctx.Err() == nil {
				proc.PrintTails(errOut, s.proc)
			}
			proc.StopAll(errOut, "dnsbench", s.proc)
		}
		if cfg.keep {
			fmt.Fprintf(errOut, "dnsbench: data and logs kept in %s\n", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			fmt.Fprintln(errOut, "dnsbench:", rerr)
		}
	}()

	queries := filepath.Join(dir, "queries.txt")
	if err := os.WriteFile(queries, []byte(queryFile(cfg.services)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "dnsbench: cluster DNS, Shoal against CoreDNS %s (file plugin) with dnsperf, on %d CPUs (%s)\n",
		corednsVersion, runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "  shoal: %s agent on %s, DNS on port %d, upstream 127.0.0.1:1 (nothing forwarded); %d ClusterIP services svc-N.default, clusterIP 10.96.x.y\n",
		shoalBin, shoalIP, cfg.port, cfg.services)
	fmt.Fprintf(out, "  coredns: %s on %s:%d, zone cluster.local from a zone file with the same %d A records (TTL 5), plugins errors and file: no log, no cache\n",
		corednsBin, corednsIP, cfg.port, cfg.services)
	if cfg.cache {
		fmt.Fprintf(out, "  coredns+cache: the same on %s:%d plus the cache plugin (defaults)\n", cachedIP, cfg.port)
	}
	fmt.Fprintf(out, "  throughput: %s -c %d -T %d -q %d -l %s, no rate limit; latency: dnsperf -v -Q %d -l %s (per-query latencies)\n",
		dnsperf, cfg.clients, cfg.threads, cfg.outstanding, strconv.FormatFloat(cfg.seconds.Seconds(), 'f', -1, 64),
		cfg.probeRate, strconv.FormatFloat(cfg.probeDuration.Seconds(), 'f', -1, 64))
	fmt.Fprintf(out, "  queries: the %d names, type A, shuffled with a fixed seed; reps=%d, servers take turns to go first\n", cfg.services, cfg.reps)

	shoal := &server{name: "shoal", ip: shoalIP, port: cfg.port}
	servers = append(servers, shoal)
	if err := startShoal(ctx, shoal, shoalBin, dir, cfg.services); err != nil {
		return fmt.Errorf("shoal: %w", err)
	}
	refs := []*server{{name: "coredns", ip: corednsIP, port: cfg.port}}
	if cfg.cache {
		refs = append(refs, &server{name: "coredns+cache", ip: cachedIP, port: cfg.port})
	}
	for _, s := range refs {
		servers = append(servers, s)
		if err := startCoreDNS(ctx, s, corednsBin, dir, cfg.services, s.name != "coredns"); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	for _, s := range servers {
		if err := checkAnswers(ctx, s, cfg.services); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	fmt.Fprintf(out, "  every server answered all %d names with the same addresses\n", cfg.services)

	type figures struct {
		qps       []float64
		avg       []time.Duration
		p99s      []time.Duration
		latencies []time.Duration
		lost      int64
		sizes     string
	}
	fig := map[string]*figures{}
	for _, s := range servers {
		fig[s.name] = &figures{}
	}
	for rep := range cfg.reps {
		for k := range servers {
			s := servers[(k+rep)%len(servers)]
			f := fig[s.name]
			r, err := perfRun{bin: dnsperf, server: s.ip, port: s.port, queries: queries, duration: cfg.seconds,
				clients: cfg.clients, threads: cfg.threads, outstanding: cfg.outstanding}.run(ctx)
			if err != nil {
				return fmt.Errorf("rep %d %s throughput: %w", rep+1, s.name, err)
			}
			f.qps, f.avg, f.lost = append(f.qps, r.QPS), append(f.avg, r.Avg), f.lost+r.Lost
			f.sizes = fmt.Sprintf("request %d B, response %d B", r.ReqSize, r.RespSize)
			fmt.Fprintf(out, "rep %d %s throughput: %.0f q/s, %d queries, %d lost, avg latency %s (sd %s, max %s), rcodes %s\n",
				rep+1, s.name, r.QPS, r.Completed, r.Lost, us(r.Avg), us(r.StdDev), us(r.Max), r.Rcodes)
			l, err := perfRun{bin: dnsperf, server: s.ip, port: s.port, queries: queries, duration: cfg.probeDuration,
				clients: 1, threads: 1, outstanding: cfg.outstanding, rate: cfg.probeRate, verbose: true}.run(ctx)
			if err != nil {
				return fmt.Errorf("rep %d %s latency: %w", rep+1, s.name, err)
			}
			if len(l.Latencies) == 0 {
				return fmt.Errorf("rep %d %s latency: dnsperf -v printed no per-query latencies", rep+1, s.name)
			}
			f.p99s, f.latencies = append(f.p99s, stats.Percentile(l.Latencies, 99)), append(f.latencies, l.Latencies...)
			fmt.Fprintf(out, "rep %d %s latency at %d q/s: n=%d p50=%s p90=%s p99=%s max=%s\n", rep+1, s.name, cfg.probeRate,
				len(l.Latencies), us(stats.Median(l.Latencies)), us(stats.Percentile(l.Latencies, 90)),
				us(stats.Percentile(l.Latencies, 99)), us(stats.Percentile(l.Latencies, 100)))
		}
	}

	fmt.Fprintln(out, "summary (same machine, same run; medians over repetitions, spread min-max):")
	for _, s := range servers {
		f := fig[s.name]
		lo, hi := stats.Spread(f.qps)
		plo, phi := stats.Spread(f.p99s)
		fmt.Fprintf(out, "%s: %.0f q/s (%.0f-%.0f), avg latency under load %s; at %d q/s p99 %s (%s-%s), over all %d samples p50=%s p99=%s max=%s; %d lost; %s\n",
			s.name, stats.Median(f.qps), lo, hi, us(stats.Median(f.avg)), cfg.probeRate, us(stats.Median(f.p99s)), us(plo), us(phi),
			len(f.latencies), us(stats.Median(f.latencies)), us(stats.Percentile(f.latencies, 99)), us(stats.Percentile(f.latencies, 100)),
			f.lost, f.sizes)
	}
	sh, cd := fig["shoal"], fig["coredns"]
	shP99, cdP99 := stats.Median(sh.p99s), stats.Median(cd.p99s)
	met := "met"
	if shP99 >= time.Millisecond {
		met = "not met"
	}
	fmt.Fprintln(out, "note: p99 comes from dnsperf -v at a fixed moderate rate, not from the saturating runs, whose latency is mostly queueing;")
	fmt.Fprintln(out, "      CoreDNS's file plugin adds the zone's NS record to every answer (larger responses), Shoal answers the A record alone.")
	if cfg.cache {
		cc := fig["coredns+cache"]
		fmt.Fprintf(out, "dns qps vs coredns+cache ratio=%.2f (shoal %.0f / coredns+cache %.0f q/s; above 1 is better for shoal)\n",
			stats.Ratio(stats.Median(sh.qps), stats.Median(cc.qps)), stats.Median(sh.qps), stats.Median(cc.qps))
	}
	fmt.Fprintf(out, "dns p99 ratio=%.2f (shoal %s / coredns %s at %d q/s; below 1 is better for shoal; goal shoal p99 < 1 ms: %s)\n",
		stats.Ratio(float64(shP99), float64(cdP99)), us(shP99), us(cdP99), cfg.probeRate, met)
	fmt.Fprintf(out, "dns qps ratio=%.2f (shoal %.0f / coredns %.0f q/s, median of %d reps; above 1 is better for shoal, goal >= 1.5)\n",
		stats.Ratio(stats.Median(sh.qps), stats.Median(cd.qps)), stats.Median(sh.qps), stats.Median(cd.qps), cfg.reps)
	return nil
}

// us prints a duration in milliseconds with three decimals: DNS latencies
// on loopback are tens to hundreds of microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// startShoal starts one agent, waits until it serves the API, applies the
// services in one transaction and waits until its DNS answers the last.
func startShoal(ctx context.Context, s *server, bin, dir string, n int) error {
	data := filepath.Join(dir, "shoal")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	s.proc = &proc.Proc{Name: "shoal agent", Bin: bin, LogPath: data + ".log",
		Args: []string{"agent", "--name", "n1", "--bind", s.ip, "--data-dir", data, "--bootstrap-expect", "1",
			"--dns-port", strconv.Itoa(s.port), "--dns-upstream", "127.0.0.1:1", "--log-level", "warn"}}
	if err := s.proc.Start(); err != nil {
		return err
	}
	api := net.JoinHostPort(s.ip, "7948")
	conn, err := client.Dial(api)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := poll.Until(ctx, formLimit, func(ctx context.Context) error {
		if s.proc.Exited() {
			return errors.New("the agent exited")
		}
		_, err := conn.Get(ctx, &pb.GetRequest{Kind: "Namespace", Name: "default", Read: &pb.ReadOptions{Linearizable: true}})
		return err
	}); err != nil {
		return fmt.Errorf("agent did not come up: %w", err)
	}
	manifest := filepath.Join(dir, "services.yaml")
	if err := os.WriteFile(manifest, []byte(servicesYAML(n)), 0o644); err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(actx, bin, "apply", "-f", manifest, "--server", api, "--timeout", "50s").CombinedOutput(); err != nil {
		return fmt.Errorf("shoal apply -f %s: %w\n%s", manifest, err, proc.Last(b, 2000))
	}
	last := n - 1
	return poll.Until(ctx, recordsLimit, func(context.Context) error {
		return expectA(s, fqdn(last), serviceIP(last))
	})
}

// startCoreDNS writes the zone and a Corefile and starts CoreDNS on s.
func startCoreDNS(ctx context.Context, s *server, bin, dir string, n int, cache bool) error {
	zone := filepath.Join(dir, "db.cluster.local")
	ip := netip.MustParseAddr(s.ip)
	if err := os.WriteFile(zone, []byte(zoneFile(n, ip)), 0o644); err != nil {
		return err
	}
	conf := filepath.Join(dir, "Corefile."+s.name)
	if err := os.WriteFile(conf, []byte(corefile(ip, s.port, zone, cache)), 0o644); err != nil {
		return err
	}
	s.proc = &proc.Proc{Name: s.name, Bin: bin, LogPath: filepath.Join(dir, s.name+".log"), Args: []string{"-conf", conf}}
	if err := s.proc.Start(); err != nil {
		return err
	}
	last := n - 1
	return poll.Until(ctx, recordsLimit, func(context.Context) error {
		if s.proc.Exited() {
			return errors.New("coredns exited")
		}
		return expectA(s, fqdn(last), serviceIP(last))
	})
}

// checkAnswers asks s for every name once and compares with the records.
func checkAnswers(ctx context.Context, s *server, n int) error {
	for i := range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := expectA(s, fqdn(i), serviceIP(i)); err != nil {
			return err
		}
	}
	return nil
}

// expectA asks s for name's A record over UDP and wants exactly ip.
func expectA(s *server, name string, ip netip.Addr) error {
	c := &mdns.Client{Net: "udp", Timeout: time.Second}
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	r, _, err := c.Exchange(m, s.addr())
	if err != nil {
		return fmt.Errorf("query %s A: %w", name, err)
	}
	var got []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*mdns.A); ok {
			got = append(got, a.A.String())
		}
	}
	if r.Rcode != mdns.RcodeSuccess || len(got) != 1 || got[0] != ip.String() {
		return fmt.Errorf("%s A: rcode %s, answers %s, want %s", name, mdns.RcodeToString[r.Rcode], strings.Join(got, ","), ip)
	}
	return nil
}
