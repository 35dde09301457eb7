package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want resolvConfig
	}{
		{"empty: libc defaults", "", resolvConfig{nameserver: "127.0.0.1", ndots: 1}},
		{"cluster first",
			"search web.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.0.0.10\nnameserver 10.0.0.11\noptions ndots:5\n",
			resolvConfig{nameserver: "10.0.0.10", search: []string{"web.svc.cluster.local", "svc.cluster.local", "cluster.local"}, ndots: 5}},
		{"comments, last search wins, trailing dots, ndots capped",
			"# x\n; y\nsearch a.example\ndomain b.example.\noptions edns0 ndots:40\nnameserver fd00::1\n",
			resolvConfig{nameserver: "fd00::1", search: []string{"b.example"}, ndots: 15}},
		{"bad ndots ignored", "options ndots:x\n", resolvConfig{nameserver: "127.0.0.1", ndots: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseResolvConf([]byte(tt.in))
			if got.nameserver != tt.want.nameserver || got.ndots != tt.want.ndots || !slices.Equal(got.search, tt.want.search) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	rc := resolvConfig{search: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local"}, ndots: 5}
	tests := []struct {
		name string
		in   string
		rc   resolvConfig
		want []string
	}{
		{"short name: search first", "web", rc,
			[]string{"web.ns.svc.cluster.local.", "web.svc.cluster.local.", "web.cluster.local.", "web."}},
		{"name.namespace", "web.other", rc,
			[]string{"web.other.ns.svc.cluster.local.", "web.other.svc.cluster.local.", "web.other.cluster.local.", "web.other."}},
		{"enough dots: bare first", "a.b.c.d.e.f", rc,
			[]string{"a.b.c.d.e.f.", "a.b.c.d.e.f.ns.svc.cluster.local.", "a.b.c.d.e.f.svc.cluster.local.", "a.b.c.d.e.f.cluster.local."}},
		{"fully qualified", "web.ns.svc.cluster.local.", rc, []string{"web.ns.svc.cluster.local."}},
		{"no search list", "web", resolvConfig{ndots: 1}, []string{"web."}},
		{"ndots 1, one dot", "example.com", resolvConfig{search: []string{"lan"}, ndots: 1}, []string{"example.com.", "example.com.lan."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := candidates(tt.in, tt.rc); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// dnsServer is a tiny UDP DNS server: it answers A queries for the names it
// knows, NOERROR without answers for their other types and NXDOMAIN for
// other names, and records the names of the A queries in order. The
// messages are built by hand (RFC 1035 section 4) to stay on the standard
// library.
type dnsServer struct {
	conn  net.PacketConn
	names map[string]netip.Addr // fully qualified, lower case

	mu    sync.Mutex
	asked []string
}

func startDNS(t *testing.T, names map[string]netip.Addr) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: conn, names: names}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, addr, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := s.answer(buf[:n]); resp != nil {
				_, _ = conn.WriteTo(resp, addr)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

func (s *dnsServer) addr() string { return s.conn.LocalAddr().String() }

func (s *dnsServer) takeAsked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.asked
	s.asked = nil
	return a
}

func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l&0xC0 != 0 || i+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	question := q[12 : i+4]
	name := strings.ToLower(strings.Join(labels, ".")) + "."
	const typeA = 1
	if qtype == typeA {
		s.mu.Lock()
		s.asked = append(s.asked, name)
		s.mu.Unlock()
	}
	ip, known := s.names[name]
	// QR, AA, RA, RD copied from the query; RCODE 3 is NXDOMAIN.
	flags := uint16(0x8000|0x0400|0x0080) | uint16(q[2]&0x01)<<8
	if !known {
		flags |= 3
	}
	var answers uint16
	if known && qtype == typeA && ip.Is4() {
		answers = 1
	}
	resp := append([]byte{}, q[0], q[1])
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1) // QDCOUNT
	resp = binary.BigEndian.AppendUint16(resp, answers)
	resp = append(resp, 0, 0, 0, 0) // NSCOUNT, ARCOUNT
	resp = append(resp, question...)
	if answers == 1 {
		resp = append(resp, 0xC0, 12) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, typeA)
		resp = binary.BigEndian.AppendUint16(resp, 1)  // class IN
		resp = binary.BigEndian.AppendUint32(resp, 30) // TTL
		resp = binary.BigEndian.AppendUint16(resp, 4)
		a4 := ip.As4()
		resp = append(resp, a4[:]...)
	}
	return resp
}

func TestResolveAndGet(t *testing.T) {
	dns := startDNS(t, map[string]netip.Addr{
		"web.ns.svc.cluster.local.":   netip.MustParseAddr("127.0.0.1"),
		"other.db.svc.cluster.local.": netip.MustParseAddr("127.0.0.2"),
		"ext.example.":                netip.MustParseAddr("127.0.0.3"),
	})
	conf := parseResolvConf([]byte("search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5\n"))
	l := &lookup{conf: conf, server: dns.addr()}

	t.Run("resolve", func(t *testing.T) {
		tests := []struct {
			name      string
			host      string
			want      string // printed; "" when it must fail
			wantAsked []string
		}{
			{"short name of the pod's namespace", "web", "127.0.0.1\n", []string{"web.ns.svc.cluster.local."}},
			{"name.namespace", "other.db", "127.0.0.2\n", []string{"other.db.ns.svc.cluster.local.", "other.db.svc.cluster.local."}},
			{"outside name after the search list", "ext.example", "127.0.0.3\n",
				[]string{"ext.example.ns.svc.cluster.local.", "ext.example.svc.cluster.local.", "ext.example.cluster.local.", "ext.example."}},
			{"fully qualified", "web.ns.svc.cluster.local.", "127.0.0.1\n", []string{"web.ns.svc.cluster.local."}},
			{"IP literal: no query", "10.1.2.3", "10.1.2.3\n", nil},
			{"unknown", "nope", "",
				[]string{"nope.ns.svc.cluster.local.", "nope.svc.cluster.local.", "nope.cluster.local.", "nope."}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dns.takeAsked()
				var out bytes.Buffer
				err := l.print(t.Context(), tt.host, &out)
				switch {
				case tt.want == "" && err == nil:
					t.Fatalf("resolved to %q, want an error", out.String())
				case tt.want == "" && strings.Contains(err.Error(), "\n"):
					t.Fatalf("error %q is not one line", err)
				case tt.want != "" && (err != nil || out.String() != tt.want):
					t.Fatalf("got %q, %v; want %q", out.String(), err, tt.want)
				}
				if got := dns.takeAsked(); !slices.Equal(got, tt.wantAsked) {
					t.Fatalf("asked %q, want %q", got, tt.wantAsked)
				}
			})
		}
	})

	t.Run("get", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/missing" {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, "hello "+r.Host+r.URL.Path)
		}))
		defer srv.Close()
		port := srv.Listener.Addr().(*net.TCPAddr).Port
		host := "web:" + strconv.Itoa(port)
		tests := []struct {
			name    string
			url     string
			wantOut string
			wantErr string
		}{
			{"by short name, Host kept", "http://" + host + "/x", "hello " + host + "/x", ""},
			{"by IP", "http://" + srv.Listener.Addr().String() + "/", "hello " + srv.Listener.Addr().String() + "/", ""},
			{"HTTP error", "http://" + host + "/missing", "404 page not found\n", "HTTP 404"},
			{"unknown host", "http://nope:1/", "", "resolve nope"},
			{"bad scheme", "ftp://web/", "", "scheme must be http or https"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var out bytes.Buffer
				err := l.get(t.Context(), tt.url, &out)
				if out.String() != tt.wantOut || (err == nil) != (tt.wantErr == "") ||
					(err != nil && (!strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n"))) {
					t.Fatalf("get = %q, %v; want %q, error %q", out.String(), err, tt.wantOut, tt.wantErr)
				}
			})
		}
	})
}

func TestResolveCommandsAndPrintResolv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("search ns.svc.cluster.local\nnameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(resolvConfEnv, path)
	t.Setenv("PRINT_RESOLV", "1")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"resolve an IP", []string{"resolve", "10.9.8.7", "--timeout", "1s"}, 0, "10.9.8.7\n", ""},
		{"resolve without name", []string{"resolve"}, 2, "", "want exactly one NAME"},
		{"get without URL", []string{"get", "--timeout", "1s"}, 2, "", "want exactly one URL"},
		{"get bad timeout", []string{"get", "http://x/", "--timeout", "soon"}, 2, "", "invalid value"},
		{"print the resolv.conf", []string{"print"}, 0,
			"resolv.conf: search ns.svc.cluster.local\nresolv.conf: nameserver 127.0.0.1\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantOut) || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

// TestServeOnPodIP checks that serve listens on POD_IP and that check finds
// it there.
func TestServeOnPodIP(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		podIP string
		want  string // listen host
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"", ""},
		{"0.0.0.0", ""},
		{"not-an-ip", ""},
	}
	for _, tt := range tests {
		t.Setenv("POD_IP", tt.podIP)
		if got := listenHost(); got != tt.want {
			t.Fatalf("POD_IP %q: listenHost() = %q, want %q", tt.podIP, got, tt.want)
		}
	}

	t.Setenv("POD_IP", "127.0.0.1")
	var out syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--port", "0"}, &out, io.Discard) }()
	waitfor.Cond(t, 5*time.Second, "serve to listen", func() (bool, string) {
		return strings.Contains(out.String(), "serving v1 on 127.0.0.1:"), out.String()
	})
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"check", "/healthz"}, &stdout, &stderr)
	http.DefaultClient.CloseIdleConnections()
	if code != 0 || !strings.Contains(stdout.String(), "GET http://127.0.0.1:") {
		t.Fatalf("check = %d %q %q", code, stdout.String(), stderr.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d:\n%s", code, out.String())
	}
}
