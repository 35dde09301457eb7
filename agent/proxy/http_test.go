package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/object/manifest"
)

// httpServer is an HTTP backend answering its name and the X-Forwarded-For
// it got.
func httpServer(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", name, r.Host, r.Header.Get("X-Forwarded-For"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// get sends one request through fe, on a connection the client keeps
// alive between calls.
func get(t *testing.T, c *http.Client, fe netip.AddrPort, header, cookie string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+fe.String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "web.default.svc"
	if header != "" {
		req.Header.Set("X-Group", header)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "group", Value: cookie})
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPRoutesByHeaderAndCookie(t *testing.T) {
	p := newProxy(t)
	fe := freePort(t, "tcp")
	routes, err := manifest.ParseRoutes("header X-Group=beta -> version=b; cookie group=beta -> version=b")
	if err != nil {
		t.Fatal(err)
	}
	weights, _ := manifest.ParseWeights("version: a=1, b=0")
	dead := freePort(t, "tcp")
	port := Port{Service: "default/web", Name: "http", Proto: corev1.ProtocolTCP, Frontends: []netip.AddrPort{fe},
		Routes: &routes, Weights: &weights,
		Backends: []Backend{
			{Addr: httpServer(t, "a1"), Pod: "a1", Group: "a", Route: "a"},
			{Addr: httpServer(t, "a2"), Pod: "a2", Group: "a", Route: "a"},
			{Addr: dead, Pod: "b-dead", Group: "b", Route: "b"},
			{Addr: httpServer(t, "b1"), Pod: "b1", Group: "b", Route: "b"},
		}}
	if err := p.Sync([]Port{port}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	got := map[string]int{}
	for i := range 40 {
		header, cookie := "", ""
		switch i % 4 {
		case 0:
			header = "beta"
		case 1:
			cookie = "beta"
		case 2:
			header = "alpha" // no rule matches: weights (all to a)
		}
		code, body := get(t, c, fe, header, cookie)
		f := strings.Fields(body)
		if code != http.StatusOK || len(f) != 3 {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		if f[1] != "web.default.svc" || f[2] != "127.0.0.1" {
			t.Fatalf("request %d: backend saw Host %q and X-Forwarded-For %q", i, f[1], f[2])
		}
		matched := header == "beta" || cookie == "beta"
		if matched != (f[0] == "b1") {
			t.Fatalf("request %d (header %q, cookie %q) reached %s", i, header, cookie, f[0])
		}
		got[f[0]]++
	}
	// Requests on one kept-alive client connection are routed one by one,
	// and the unmatched ones are spread by the balancer.
	if got["b1"] != 20 || got["a1"] != 10 || got["a2"] != 10 {
		t.Fatalf("40 requests: %v", got)
	}

	// A group with no backend left answers 503; the others still work.
	port.Backends = port.Backends[:2]
	if err := p.Sync([]Port{port}); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, c, fe, "beta", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "no ready endpoint in group b") {
		t.Fatalf("group without backends: %d %q", code, body)
	}
	if code, _ := get(t, c, fe, "", ""); code != http.StatusOK {
		t.Fatalf("unmatched request: %d", code)
	}

	// Without routes the frontend is plain TCP again: the header no longer
	// matters and no X-Forwarded-For is added.
	port.Routes = nil
	if err := p.Sync([]Port{port}); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	code, body := get(t, c, fe, "beta", "")
	if f := strings.Fields(body); code != http.StatusOK || len(f) != 2 || !strings.HasPrefix(f[0], "a") {
		t.Fatalf("after routes were removed: %d %q", code, body)
	}
}
