package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	const out = `Running 5s test @ http://127.0.0.2:8080/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.21ms    1.02ms  21.40ms   80.00%
    Req/Sec     4.98k   310.00     5.61k    71.00%
  Latency Distribution
     50%  850.00us
     75%    3.40ms
     90%    4.10ms
     99%    1.20s
  49562 requests in 5.00s, 9.78MB read
  Socket errors: connect 0, read 12, write 0, timeout 0
  Non-2xx or 3xx responses: 3
Requests/sec:   9906.52
Transfer/sec:      1.95MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{RequestsPerSec: 9906.52, Requests: 49562, P50: 850 * time.Microsecond, P90: 4100 * time.Microsecond,
		P99: 1200 * time.Millisecond, SocketErrors: "connect 0, read 12, write 0, timeout 0", Non2xx: 3}
	if r != want {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
}

func TestParseWrkErrors(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"no rate", "unable to connect to 127.0.0.2:8080 Connection refused\n", "no Requests/sec"},
		{"no request", "  0 requests in 5.00s, 0B read\nRequests/sec:      0.00\n", "no request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseWrk(tt.out); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseWrk error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseIperf(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    iperfResult
		wantErr string
	}{
		{"ok", `{"start":{},"intervals":[],"end":{"sum_sent":{"bytes":100,"bits_per_second":2.5e10,"retransmits":4},
			"sum_received":{"bytes":99,"bits_per_second":2.4e10}}}`, iperfResult{ReceivedBps: 2.4e10, SentBps: 2.5e10, Retransmits: 4}, ""},
		{"server busy", `{"start":{},"intervals":[],"end":{},"error":"the server is busy running a test. try again later"}`, iperfResult{}, "busy"},
		{"empty", ``, iperfResult{}, "output"},
		{"nothing received", `{"end":{"sum_received":{"bytes":0}}}`, iperfResult{}, "nothing received"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseIperf([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseIperf error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || r != tt.want {
				t.Errorf("parseIperf = %+v, %v; want %+v", r, err, tt.want)
			}
		})
	}
}

func TestHAProxyConfig(t *testing.T) {
	got := haproxyConfig("127.0.0.3", 2, 9000, false, time.Minute, map[int]string{8080: "127.0.0.2:8080", 5201: "127.0.0.2:5201"})
	for _, want := range []string{"nbthread 2", "maxconn 9000", "mode tcp", "timeout client 60000ms",
		"frontend f5201\n    bind 127.0.0.3:5201\n    default_backend b5201",
		"backend b8080\n    server s1 127.0.0.2:8080"} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "log") || strings.Contains(got, "splice") {
		t.Errorf("config logs or splices:\n%s", got)
	}
	if strings.Index(got, "f5201") > strings.Index(got, "f8080") {
		t.Errorf("frontends not in port order:\n%s", got)
	}
}
