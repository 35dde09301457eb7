package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"time"
)

// A port with Routes (a Service port marked appProtocol: http with the
// shoal.dev/routes annotation) is served as HTTP/1.1: every request is
// matched against the routes and sent to a backend of the route's group,
// or, when no rule matches, to the backend the port's balancing picks
// (weights, affinity and policy as for TCP). Connections to backends are
// pooled per backend; a backend whose connect fails is skipped for that
// request, as TCP connections skip it. Upgrades (WebSocket) pass through.

// errNoBackend: no Ready backend for the request's group.
var errNoBackend = errors.New("no ready endpoint")

// routeKey carries a request's routing choice from the rewrite to the
// transport.
type routeKey struct{}

type routeChoice struct {
	target string     // the group a rule chose, "" for the balancer's pick
	client netip.Addr // for ClientIP affinity
}

// newBackendTransport is the pool of connections to backends, shared by
// every HTTP port of the proxy.
func newBackendTransport(dialTimeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// serveHTTP serves l's socket as HTTP until it is closed.
func (p *Proxy) serveHTTP(l *listener) {
	defer p.conns.Done()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetXForwarded()
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "backend" // the transport puts the picked backend here
			ch := routeChoice{}
			if ap, err := netip.ParseAddrPort(pr.In.RemoteAddr); err == nil {
				ch.client = ap.Addr().Unmap()
			}
			if r := l.bal.routes(); r != nil {
				ch.target = r.Match(pr.In.Header.Values, func(name string) (string, bool) {
					c, err := pr.In.Cookie(name)
					if err != nil {
						return "", false
					}
					return c.Value, true
				})
			}
			pr.Out = pr.Out.WithContext(context.WithValue(pr.Out.Context(), routeKey{}, ch))
		},
		Transport: &routeTransport{p: p, l: l},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			code := http.StatusBadGateway
			if errors.Is(err, errNoBackend) {
				code = http.StatusServiceUnavailable
			}
			if !errors.Is(err, context.Canceled) {
				p.log.Debug("proxy: http request failed", "service", l.key, "err", err)
			}
			http.Error(w, fmt.Sprintf("shoal proxy: %s: %v", l.key, err), code)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
		BaseContext:       func(net.Listener) context.Context { return p.ctx },
	}
	l.mu.Lock()
	l.srv = srv
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return
	}
	if err := srv.Serve(l.tcp); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		p.log.Warn("proxy: http frontend stopped", "frontend", l.fe.String(), "err", err)
	}
}

// routeTransport sends a request to the backend its routing choice and
// the balancer pick, trying another when the connect fails.
type routeTransport struct {
	p *Proxy
	l *listener
}

func (t *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ch, _ := req.Context().Value(routeKey{}).(routeChoice)
	tried := map[*backend]bool{}
	for {
		var be *backend
		if ch.target != "" {
			be = t.l.bal.pickRoute(ch.target, tried)
		} else {
			be = t.l.bal.pick(ch.client, tried)
		}
		if be == nil {
			if ch.target != "" {
				return nil, fmt.Errorf("%w in group %s", errNoBackend, ch.target)
			}
			return nil, errNoBackend
		}
		out := req.Clone(req.Context())
		out.URL.Host = be.Addr.String()
		be.active.Add(1)
		resp, err := t.p.transport.RoundTrip(out)
		if err != nil {
			be.active.Add(-1)
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				tried[be] = true
				t.p.m.dialErrors.WithLabelValues(t.l.key).Inc()
				t.p.log.Debug("proxy: backend connect failed, trying another", "service", t.l.key, "backend", be.Addr, "pod", be.Pod, "err", err)
				continue
			}
			return nil, err
		}
		t.p.m.connections.WithLabelValues(t.l.key).Inc()
		resp.Body = &activeBody{ReadCloser: resp.Body, be: be}
		return resp, nil
	}
}

// activeBody counts a request as open on its backend until its answer is
// read (least connections).
type activeBody struct {
	io.ReadCloser
	be   *backend
	once sync.Once
}

func (b *activeBody) Close() error {
	b.once.Do(func() { b.be.active.Add(-1) })
	return b.ReadCloser.Close()
}

// Write lets an upgraded connection's body (io.ReadWriteCloser) through.
func (b *activeBody) Write(p []byte) (int, error) {
	if w, ok := b.ReadCloser.(io.Writer); ok {
		return w.Write(p)
	}
	return 0, errors.New("body is not writable")
}
