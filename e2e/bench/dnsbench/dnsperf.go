package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
)

// perfResult is what one dnsperf run reports.
type perfResult struct {
	Sent, Completed, Lost int64
	NoError               int64  // responses with rcode NOERROR
	Rcodes                string // dnsperf's "Response codes" line, as printed
	QPS                   float64
	Avg, StdDev, Min, Max time.Duration
	ReqSize, RespSize     int // average packet sizes in bytes
	// Latencies holds one sample per answered query when dnsperf ran with
	// -v (its "> NOERROR name A 0.000123" lines, microsecond resolution).
	Latencies []time.Duration
}

// parseDnsperf reads the output of dnsperf 2.x (Debian 12 ships 2.10):
// the Statistics block, and the per-query lines of -v.
func parseDnsperf(out []byte) (perfResult, error) {
	var r perfResult
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "> ") {
			// "> NOERROR svc-1.default.svc.cluster.local A 0.000546"; a
			// lost query ("> T ...") has no latency.
			f := strings.Fields(line)
			if len(f) == 5 {
				if s, err := strconv.ParseFloat(f[4], 64); err == nil {
					r.Latencies = append(r.Latencies, seconds(s))
				}
			}
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		first := strings.Fields(val + " ")
		var err error
		switch key {
		case "Queries sent":
			r.Sent, err = strconv.ParseInt(first[0], 10, 64)
		case "Queries completed":
			r.Completed, err = strconv.ParseInt(first[0], 10, 64)
		case "Queries lost":
			r.Lost, err = strconv.ParseInt(first[0], 10, 64)
		case "Response codes":
			r.Rcodes = val
			r.NoError, err = noErrorCount(val)
		case "Queries per second":
			r.QPS, err = strconv.ParseFloat(first[0], 64)
		case "Average packet size":
			// "request 40, response 56"
			_, err = fmt.Sscanf(val, "request %d, response %d", &r.ReqSize, &r.RespSize)
		case "Average Latency (s)":
			// "0.000882 (min 0.000020, max 0.006573)"
			var avg, lo, hi float64
			_, err = fmt.Sscanf(val, "%g (min %g, max %g)", &avg, &lo, &hi)
			r.Avg, r.Min, r.Max = seconds(avg), seconds(lo), seconds(hi)
		case "Latency StdDev (s)":
			var sd float64
			sd, err = strconv.ParseFloat(first[0], 64)
			r.StdDev = seconds(sd)
		default:
			continue
		}
		if err != nil {
			return r, fmt.Errorf("dnsperf output %q: %w", line, err)
		}
		seen[key] = true
	}
	for _, k := range []string{"Queries sent", "Queries completed", "Queries per second", "Average Latency (s)"} {
		if !seen[k] {
			return r, fmt.Errorf("dnsperf output has no %q line", k)
		}
	}
	return r, nil
}

// noErrorCount reads the NOERROR count of "NOERROR 1061463 (100.00%),
// NXDOMAIN 3 (0.00%)".
func noErrorCount(codes string) (int64, error) {
	for _, part := range strings.Split(codes, ",") {
		f := strings.Fields(part)
		if len(f) >= 2 && f[0] == "NOERROR" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// perfRun is one dnsperf invocation against one server.
type perfRun struct {
	bin         string // dnsperf
	server      string // IP
	port        int
	queries     string // the query file
	duration    time.Duration
	clients     int // -c
	threads     int // -T
	outstanding int // -q
	rate        int // -Q, 0 for as fast as it goes
	verbose     bool
}

func (p perfRun) args() []string {
	a := []string{"-s", p.server, "-p", strconv.Itoa(p.port), "-d", p.queries,
		"-l", strconv.FormatFloat(p.duration.Seconds(), 'f', -1, 64),
		"-c", strconv.Itoa(p.clients), "-T", strconv.Itoa(p.threads), "-q", strconv.Itoa(p.outstanding)}
	if p.rate > 0 {
		a = append(a, "-Q", strconv.Itoa(p.rate))
	}
	if p.verbose {
		a = append(a, "-v")
	}
	return a
}

// run runs dnsperf and parses its report. It fails when a query was lost
// or answered with anything but NOERROR: the figures would not be about
// the records.
func (p perfRun) run(ctx context.Context) (perfResult, error) {
	ctx, cancel := context.WithTimeout(ctx, p.duration+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, p.args()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return perfResult{}, fmt.Errorf("%s %s: %w\n%s%s", p.bin, strings.Join(p.args(), " "), err, errb.String(), proc.Last(out.Bytes(), 2000))
	}
	r, err := parseDnsperf(out.Bytes())
	if err != nil {
		return r, err
	}
	if r.Completed == 0 || r.NoError != r.Completed {
		return r, fmt.Errorf("dnsperf against %s:%d: %d of %d queries completed, response codes %s", p.server, p.port, r.Completed, r.Sent, r.Rcodes)
	}
	return r, nil
}
