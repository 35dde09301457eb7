package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// shutdownGrace bounds the graceful shutdown after SIGTERM.
const shutdownGrace = 5 * time.Second

// info is what GET / answers.
type info struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Node      string `json:"node"`
	Version   string `json:"version"`
	Hostname  string `json:"hostname"`
	// Client is the address the request came from, as this pod sees it.
	Client string `json:"client,omitempty"`
}

// app is the state behind the HTTP handlers.
type app struct {
	info     info
	now      func() time.Time
	readyAt  time.Time // not ready before (READY_AFTER)
	unhealth atomic.Bool
	unready  atomic.Bool
	// burn is the CPU load of /burn, burnMillis its default rate.
	burn       burner
	burnMillis int

	logMu sync.Mutex
	log   io.Writer
}

func newApp(version string, readyAfter time.Duration, now func() time.Time, log io.Writer) *app {
	host, _ := os.Hostname()
	return &app{
		info: info{
			Pod:       os.Getenv("POD_NAME"),
			Namespace: os.Getenv("POD_NAMESPACE"),
			Node:      os.Getenv("NODE_NAME"),
			Version:   version,
			Hostname:  host,
		},
		now:        now,
		readyAt:    now().Add(readyAfter),
		burnMillis: 1000,
		log:        log,
	}
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		reply := a.info
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			reply.Client = host
		}
		_ = json.NewEncoder(w).Encode(reply) // one line
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if a.unhealth.Load() {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /healthz/fail", flip(&a.unhealth, true))
	mux.HandleFunc("POST /healthz/ok", flip(&a.unhealth, false))
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if a.unready.Load() || a.now().Before(a.readyAt) {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("POST /ready/fail", flip(&a.unready, true))
	mux.HandleFunc("POST /ready/ok", flip(&a.unready, false))
	burnHandlers(mux, &a.burn, a.burnMillis)
	return a.logged(mux)
}

func flip(b *atomic.Bool, v bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b.Store(v)
		fmt.Fprintln(w, "ok")
	}
}

// logged writes one line per request: method, path, status, duration, peer.
func (a *app) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		a.logMu.Lock()
		defer a.logMu.Unlock()
		fmt.Fprintf(a.log, "%s %s %s %d %s %s\n", start.UTC().Format(time.RFC3339), r.Method, r.URL.Path,
			sw.status, time.Since(start).Round(time.Microsecond), r.RemoteAddr)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func serveCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := fs.Int("port", envPort(), "TCP port (default: env PORT, else 8080)")
	version := fs.String("version", envOr("VERSION", "v1"), "version to report (default: env VERSION, else v1)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", pos[0])}
	}
	var readyAfter time.Duration
	if s := os.Getenv("READY_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return usageError{fmt.Errorf("READY_AFTER: %w", err)}
		}
		readyAfter = d
	}
	burnMillis, err := burnDefault()
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(listenHost(), strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	// The port actually bound (--port 0 picks one), for `check` and `set`
	// run in the same working directory.
	bound := ln.Addr().(*net.TCPAddr).Port
	if err := os.WriteFile(portFile, []byte(strconv.Itoa(bound)+"\n"), 0o644); err != nil {
		ln.Close()
		return fmt.Errorf("write %s: %w", portFile, err)
	}
	fmt.Fprintf(out, "listening on port %d\n", bound)
	a := newApp(*version, readyAfter, time.Now, out)
	a.burnMillis = burnMillis
	return serve(ctx, ln, a, out)
}

// serve answers on ln until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, a *app, out io.Writer) error {
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "serving %s on %s\n", a.info.Version, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.logMu.Lock()
	fmt.Fprintln(out, "shutting down")
	a.logMu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	a.burn.set(0)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// portFile is where serve writes its port, in its working directory.
const portFile = "port"

// localURL is the URL of path on the server of this working directory.
func localURL(path string) (string, error) {
	b, err := os.ReadFile(portFile)
	if err != nil {
		return "", fmt.Errorf("no server here (%w)", err)
	}
	port := strings.TrimSpace(string(b))
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	// The address serve listens on (POD_IP), else loopback.
	return "http://" + net.JoinHostPort(cmp.Or(listenHost(), "127.0.0.1"), port) + path, nil
}

// checkCmd GETs PATH on the server of this working directory and succeeds on
// 2xx and 3xx: an exec probe for pods that share their node's address.
func checkCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) != 1 {
		return usageError{errors.New("want exactly one PATH")}
	}
	url, err := localURL(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	fmt.Fprintf(out, "GET %s: HTTP %d\n", url, resp.StatusCode)
	return nil
}

// setCmd flips /healthz, /ready or /burn of the server of this working
// directory: `set /healthz fail`, `set /ready ok`, `set /burn on`.
func setCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) != 2 || (args[1] != "fail" && args[1] != "ok" && args[1] != "on" && args[1] != "off") {
		return usageError{errors.New("want PATH fail|ok|on|off")}
	}
	url, err := localURL(strings.TrimSuffix(args[0], "/") + "/" + args[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("POST %s: HTTP %d", url, resp.StatusCode)
	}
	fmt.Fprintf(out, "POST %s: HTTP %d\n", url, resp.StatusCode)
	return nil
}
