package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
)

// iperf runs iperf3 with streams parallel streams through p.
func (b *bench) iperf(ctx context.Context, p path, streams int) (sample, error) {
	secs := int(b.cfg.seconds / time.Second)
	args := []string{"-c", p.iperfHost, "-p", strconv.Itoa(p.iperfPort), "-t", strconv.Itoa(secs), "-P", strconv.Itoa(streams), "-J"}
	cctx, cancel := context.WithTimeout(ctx, b.cfg.seconds+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, b.cfg.iperfBin, args...).Output()
	r, perr := parseIperf(out)
	if err != nil || perr != nil {
		return sample{}, fmt.Errorf("iperf3 %s: %w", strings.Join(args, " "), errors.Join(err, perr))
	}
	return sample{value: r.ReceivedBps, detail: fmt.Sprintf("sender %s Gbit/s, %d retransmits", num(r.SentBps/1e9), r.Retransmits)}, nil
}

// iperfResult is what the bench reads of iperf3 -J's output.
type iperfResult struct {
	ReceivedBps, SentBps float64
	Retransmits          int64
}

// parseIperf reads iperf3 -J output: end.sum_received.bits_per_second
// (the receiver's count, which excludes what was still in flight).
func parseIperf(b []byte) (iperfResult, error) {
	var doc struct {
		Error string `json:"error"`
		End   struct {
			SumSent struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Retransmits   int64   `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Bytes         int64   `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 -J output: %w", err)
	}
	if doc.Error != "" {
		return iperfResult{}, fmt.Errorf("iperf3: %s", doc.Error)
	}
	if doc.End.SumReceived.Bytes <= 0 {
		return iperfResult{}, errors.New("iperf3 -J output: nothing received (no end.sum_received)")
	}
	return iperfResult{ReceivedBps: doc.End.SumReceived.BitsPerSecond, SentBps: doc.End.SumSent.BitsPerSecond,
		Retransmits: doc.End.SumSent.Retransmits}, nil
}

// wrk runs wrk with one request per connection through p.
func (b *bench) wrk(ctx context.Context, p path) (sample, error) {
	secs := int(b.cfg.seconds / time.Second)
	url := fmt.Sprintf("http://%s:%d/", p.httpHost, p.httpPort)
	args := []string{"-t" + strconv.Itoa(b.cfg.wrkThreads), "-c" + strconv.Itoa(b.cfg.wrkConns), "-d" + strconv.Itoa(secs) + "s",
		"--latency", "-H", "Connection: close", url}
	cctx, cancel := context.WithTimeout(ctx, b.cfg.seconds+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, b.cfg.wrkBin, args...).CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, proc.Last(out, 2000))
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return sample{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, proc.Last(out, 2000))
	}
	d := fmt.Sprintf("%d requests, latency p50 %s p90 %s p99 %s", r.Requests, ms(r.P50), ms(r.P90), ms(r.P99))
	if r.SocketErrors != "" {
		d += ", socket errors: " + r.SocketErrors
	}
	if r.Non2xx > 0 {
		d += fmt.Sprintf(", %d non-2xx/3xx responses", r.Non2xx)
	}
	return sample{value: r.RequestsPerSec, detail: d}, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// wrkResult is what the bench reads of wrk --latency's output.
type wrkResult struct {
	RequestsPerSec float64
	Requests       int64
	P50, P90, P99  time.Duration
	SocketErrors   string // "connect 0, read 3, write 0, timeout 0", or empty when wrk printed none
	Non2xx         int64
}

var (
	wrkRate     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: (.*)$`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: ([0-9]+)`)
)

// parseWrk reads wrk's text output (with --latency for the percentiles).
func parseWrk(s string) (wrkResult, error) {
	var r wrkResult
	m := wrkRate.FindStringSubmatch(s)
	if m == nil {
		return r, errors.New("no Requests/sec line in wrk's output")
	}
	var err error
	if r.RequestsPerSec, err = strconv.ParseFloat(m[1], 64); err != nil {
		return r, fmt.Errorf("wrk Requests/sec %q: %w", m[1], err)
	}
	if m := wrkRequests.FindStringSubmatch(s); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if r.Requests == 0 {
		return r, errors.New("wrk completed no request")
	}
	for _, m := range wrkPct.FindAllStringSubmatch(s, -1) {
		d, err := wrkDuration(m[2], m[3])
		if err != nil {
			return r, err
		}
		switch m[1] {
		case "50":
			r.P50 = d
		case "90":
			r.P90 = d
		case "99":
			r.P99 = d
		}
	}
	if m := wrkSocket.FindStringSubmatch(s); m != nil {
		r.SocketErrors = strings.TrimSpace(m[1])
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}

// wrkDuration reads wrk's "1.23ms" as value and unit.
func wrkDuration(v, unit string) (time.Duration, error) {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("wrk latency %q: %w", v+unit, err)
	}
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[unit]
	return time.Duration(math.Round(x * float64(scale))), nil
}
