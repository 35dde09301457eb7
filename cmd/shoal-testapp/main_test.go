package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoal-dev/shoal/internal/waitfor"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for the server's and the test's use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHandlers(t *testing.T) {
	t.Setenv("POD_NAME", "web-1")
	t.Setenv("POD_NAMESPACE", "default")
	t.Setenv("NODE_NAME", "n1")
	var now atomic.Int64
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now.Store(start.UnixNano())
	var logs syncBuffer
	a := newApp("v2", 2*time.Second, func() time.Time { return time.Unix(0, now.Load()) }, &logs)
	srv := httptest.NewServer(a.handler())
	defer srv.Close()

	steps := []struct {
		name       string
		method     string
		path       string
		advance    time.Duration // move the clock first
		wantStatus int
		wantBody   string // prefix
	}{
		{"not ready before READY_AFTER", "GET", "/ready", 0, 503, "not ready"},
		{"healthy", "GET", "/healthz", 0, 200, "ok"},
		{"ready after READY_AFTER", "GET", "/ready", 2 * time.Second, 200, "ready"},
		{"fail liveness", "POST", "/healthz/fail", 0, 200, "ok"},
		{"unhealthy", "GET", "/healthz", 0, 500, "unhealthy"},
		{"liveness ok again", "POST", "/healthz/ok", 0, 200, "ok"},
		{"healthy again", "GET", "/healthz", 0, 200, "ok"},
		{"fail readiness", "POST", "/ready/fail", 0, 200, "ok"},
		{"unready", "GET", "/ready", 0, 503, "not ready"},
		{"readiness ok again", "POST", "/ready/ok", 0, 200, "ok"},
		{"ready again", "GET", "/ready", 0, 200, "ready"},
		{"flip needs POST", "GET", "/healthz/fail", 0, 405, ""},
		{"unknown path", "GET", "/nope", 0, 404, ""},
	}
	for _, s := range steps {
		now.Add(int64(s.advance))
		req, err := http.NewRequest(s.method, srv.URL+s.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.wantStatus || !strings.HasPrefix(string(body), s.wantBody) {
			t.Fatalf("%s: %s %s = %d %q, want %d %q", s.name, s.method, s.path, resp.StatusCode, body, s.wantStatus, s.wantBody)
		}
	}

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got info
	if err := json.Unmarshal(body, &got); err != nil || strings.Count(string(body), "\n") != 1 {
		t.Fatalf("GET / = %q, %v; want one JSON line", body, err)
	}
	if got.Pod != "web-1" || got.Namespace != "default" || got.Node != "n1" || got.Version != "v2" || got.Hostname == "" {
		t.Fatalf("GET / = %+v", got)
	}
	if n := strings.Count(logs.String(), "\n"); n != len(steps)+1 {
		t.Fatalf("%d log lines for %d requests:\n%s", n, len(steps)+1, logs.String())
	}
	if !strings.Contains(logs.String(), "GET /healthz 500 ") {
		t.Fatalf("log lacks the failed health check:\n%s", logs.String())
	}
}

func TestServeShutsDownOnSignal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, ln, newApp("v1", 0, time.Now, &out), &out) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	cancel() // what SIGTERM does in main
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(out.String(), "shutting down\n") {
		t.Fatalf("output lacks %q:\n%s", "shutting down", out.String())
	}
}

func TestCommands(t *testing.T) {
	t.Setenv("POD_NAME", "p")
	t.Setenv("WEB_SERVICE_HOST", "10.96.0.10")
	t.Setenv("EXTRA", "x")
	t.Setenv("PRINT_ENV", "EXTRA")
	t.Setenv("UNRELATED", "y")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string // lines that must appear
		wantErr  string
	}{
		{"no command", nil, 2, nil, "usage"},
		{"unknown command", []string{"fly"}, 2, nil, "unknown command"},
		{"crash-after default code", []string{"crash-after", "0s"}, 1, []string{"exiting with code 1"}, ""},
		{"crash-after with code", []string{"crash-after", "10ms", "--code", "3"}, 3, []string{"exiting with code 3"}, ""},
		{"crash-after bad duration", []string{"crash-after", "soon"}, 2, nil, "invalid duration"},
		{"sleep with duration", []string{"sleep", "10ms"}, 0, nil, ""},
		{"sleep bad duration", []string{"sleep", "x"}, 2, nil, "invalid duration"},
		{"print", []string{"print", "a", "b c"}, 0,
			[]string{"arg[0]=a", "arg[1]=b c", "POD_NAME=p", "WEB_SERVICE_HOST=10.96.0.10", "EXTRA=x"}, ""},
		{"serve bad flag", []string{"serve", "--nope"}, 2, nil, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			lines := strings.Split(stdout.String(), "\n")
			for _, want := range tt.wantOut {
				if !slices.Contains(lines, want) {
					t.Fatalf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			if strings.Contains(stdout.String(), "UNRELATED") {
				t.Fatalf("print showed unselected env:\n%s", stdout.String())
			}
		})
	}

	t.Run("sleep forever ends on SIGTERM", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"sleep"}, io.Discard, io.Discard) }()
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
	})
}

func TestEchoUDP(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- echoUDP(ctx, conn) }()

	c, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	// UDP may drop a datagram: resend until the echo comes back.
	waitfor.Cond(t, 5*time.Second, "an echo", func() (bool, string) {
		if _, err := c.Write([]byte("ping")); err != nil {
			return false, err.Error()
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			return false, err.Error()
		}
		return string(buf[:n]) == "ping", string(buf[:n])
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("echoUDP: %v", err)
	}
}
