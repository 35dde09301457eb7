package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/waitfor"
)

// cpuTime is the CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestBurnEndpoints(t *testing.T) {
	a := newApp("v1", 0, time.Now, io.Discard)
	a.burnMillis = 300
	srv := httptest.NewServer(a.handler())
	defer srv.Close()
	defer a.burn.set(0) // stop the load even if a step fails

	call := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steps := []struct {
		method, path string
		wantStatus   int
		wantBody     string // prefix
		burning      int    // the rate after the step
	}{
		{"GET", "/burn", 200, "off", 0},
		{"POST", "/burn/on", 200, "on 300m", 300},
		{"GET", "/burn", 200, "on 300m", 300},
		{"POST", "/burn/on?millicores=1500", 200, "on 1500m", 1500},
		{"POST", "/burn/on?millicores=0", 400, "millicores \"0\": want millicores from 1 to 64000", 1500},
		{"POST", "/burn/on?millicores=lots", 400, "millicores \"lots\"", 1500},
		{"POST", "/burn/off", 200, "off", 0},
		{"POST", "/burn/off", 200, "off", 0},
		{"GET", "/burn/on", 405, "", 0},
	}
	for _, s := range steps {
		code, body := call(s.method, s.path)
		if code != s.wantStatus || !strings.HasPrefix(body, s.wantBody) || a.burn.rate() != s.burning {
			t.Fatalf("%s %s = %d %q, burning %d; want %d %q, burning %d", s.method, s.path, code, body, a.burn.rate(), s.wantStatus, s.wantBody, s.burning)
		}
	}

	// Switched on, the process uses CPU; off, its goroutines are gone
	// (goleak checks at the end of the package's tests).
	before := cpuTime(t)
	if code, body := call("POST", "/burn/on?millicores=500"); code != 200 {
		t.Fatalf("burn on: %d %q", code, body)
	}
	waitfor.Cond(t, 10*time.Second, "the load to use 100ms of CPU", func() (bool, string) {
		used := cpuTime(t) - before
		return used >= 100*time.Millisecond, fmt.Sprintf("used %v", used)
	})
	if code, body := call("POST", "/burn/off"); code != 200 {
		t.Fatalf("burn off: %d %q", code, body)
	}
}

func TestBurnDefault(t *testing.T) {
	tests := []struct {
		env     string
		want    int
		wantErr string
	}{
		{"", 1000, ""},
		{"250", 250, ""},
		{"64000", 64000, ""},
		{"0", 0, `BURN_MILLICORES: "0": want millicores from 1 to 64000`},
		{"64001", 0, "want millicores"},
		{"1.5", 0, "want millicores"},
	}
	for _, tt := range tests {
		t.Setenv("BURN_MILLICORES", tt.env)
		got, err := burnDefault()
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("BURN_MILLICORES=%q: %d, %v; want %d, %q", tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestServeRefusesBadBurnRate(t *testing.T) {
	t.Setenv("BURN_MILLICORES", "lots")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--port", "0"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "BURN_MILLICORES") {
		t.Fatalf("exit %d, stderr %q; want 2 naming BURN_MILLICORES", code, errb.String())
	}
}

func TestSetWants(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"set", "/burn", "maybe"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "fail|ok|on|off") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
