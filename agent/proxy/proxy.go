package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"golang.org/x/sys/unix"
)

// Config tunes a Proxy.
type Config struct {
	Logger *slog.Logger
	// DialTimeout bounds one connect to a backend before the next is
	// tried (default 2 s).
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP flow without traffic (default 30 s).
	UDPIdleTimeout time.Duration
	// Now is the clock of affinity timeouts (default time.Now).
	Now func() time.Time
	// Registerer gets the proxy's metrics (nil: none).
	Registerer prometheus.Registerer
}

// Proxy serves service ports. Sync reconciles it with a table; Close stops
// every listener and connection.
type Proxy struct {
	cfg Config
	log *slog.Logger
	m   metrics

	mu        sync.Mutex
	closed    bool
	balancers map[string]*balancer // by Port.Key
	listeners map[Frontend]*listener
	failed    map[Frontend]string // frontends that could not listen, with the error
	conns     sync.WaitGroup
	ctx       context.Context // ends on Close
	cancel    context.CancelFunc
	transport *http.Transport // to backends of HTTP ports
}

// listener is one frontend's socket; bal is the service port it serves.
type listener struct {
	fe     Frontend
	key    string
	bal    *balancer
	routed bool // served as HTTP (Port.Routes)
	tcp    *net.TCPListener
	udp    *udpFrontend

	mu     sync.Mutex
	srv    *http.Server // of a routed frontend, once serving
	closed bool
}

// New returns a proxy serving nothing.
func New(cfg Config) *Proxy {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.UDPIdleTimeout == 0 {
		cfg.UDPIdleTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer),
		balancers: map[string]*balancer{}, listeners: map[Frontend]*listener{},
		failed: map[Frontend]string{}, ctx: ctx, cancel: cancel, transport: newBackendTransport(cfg.DialTimeout)}
}

// Sync makes the proxy serve exactly ports. Frontends that cannot listen
// are reported in the returned error and tried again on the next Sync;
// the others serve meanwhile. Two ports claiming one frontend: the first
// in ports wins.
func (p *Proxy) Sync(ports []Port) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("proxy closed")
	}
	want := map[Frontend]*Port{}
	keys := map[string]bool{}
	for i := range ports {
		port := &ports[i]
		keys[port.Key()] = true
		b := p.balancers[port.Key()]
		if b == nil {
			b = newBalancer(p.cfg.Now)
			p.balancers[port.Key()] = b
		}
		b.update(*port)
		for _, a := range port.Frontends {
			fe := Frontend{Proto: port.Proto, Addr: a}
			if _, dup := want[fe]; !dup {
				want[fe] = port
			}
		}
	}
	for fe, l := range p.listeners {
		if port, ok := want[fe]; !ok || port.Key() != l.key || port.routed() != l.routed {
			l.close()
			delete(p.listeners, fe)
			p.log.Debug("proxy: stopped listening", "frontend", fe.String(), "service", l.key)
		}
	}
	for key := range p.balancers {
		if !keys[key] {
			delete(p.balancers, key)
		}
	}
	var errs []error
	failed := map[Frontend]string{}
	for fe, port := range want {
		if _, ok := p.listeners[fe]; ok {
			continue
		}
		l, err := p.listen(fe, port.Key(), port.routed(), p.balancers[port.Key()])
		if err != nil {
			failed[fe] = err.Error()
			if p.failed[fe] != err.Error() {
				p.log.Warn("proxy: cannot listen", "frontend", fe.String(), "service", port.Key(), "err", err)
			}
			errs = append(errs, fmt.Errorf("%s for %s: %w", fe, port.Key(), err))
			continue
		}
		p.listeners[fe] = l
		p.log.Debug("proxy: listening", "frontend", fe.String(), "service", port.Key())
	}
	p.failed = failed
	p.m.listeners.Set(float64(len(p.listeners)))
	return errors.Join(errs...)
}

// Failed is the number of frontends the last Sync could not open.
func (p *Proxy) Failed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.failed)
}

// Close stops every listener and ends every connection and flow.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	for fe, l := range p.listeners {
		l.close()
		delete(p.listeners, fe)
	}
	p.mu.Unlock()
	p.conns.Wait()
	p.transport.CloseIdleConnections()
	return nil
}

func (p *Proxy) listen(fe Frontend, key string, routed bool, b *balancer) (*listener, error) {
	// No TCP keepalive on accepted connections (as HAProxy's default):
	// it costs four setsockopt calls per connection. Connections to
	// backends keep it, so a dead node's are found.
	lc := net.ListenConfig{Control: reusePortFreeBind, KeepAlive: -1}
	l := &listener{fe: fe, key: key, bal: b, routed: routed}
	switch fe.Proto {
	case corev1.ProtocolTCP:
		ln, err := lc.Listen(context.Background(), "tcp", fe.Addr.String())
		if err != nil {
			return nil, err
		}
		l.tcp = ln.(*net.TCPListener)
		p.conns.Add(1)
		if routed {
			go p.serveHTTP(l)
		} else {
			go p.acceptTCP(l)
		}
	case corev1.ProtocolUDP:
		pc, err := lc.ListenPacket(context.Background(), "udp", fe.Addr.String())
		if err != nil {
			return nil, err
		}
		l.udp = newUDPFrontend(p, pc.(*net.UDPConn), key, b)
		p.conns.Add(1)
		go func() {
			defer p.conns.Done()
			l.udp.serve()
		}()
	default:
		return nil, fmt.Errorf("protocol %s not supported", fe.Proto)
	}
	return l, nil
}

func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	srv := l.srv
	l.mu.Unlock()
	if srv != nil {
		_ = srv.Close() // the socket and every connection
	}
	if l.tcp != nil {
		_ = l.tcp.Close()
	}
	if l.udp != nil {
		l.udp.close()
	}
}

// reusePortFreeBind lets several sockets share an address (agents of one
// dev cluster on one host) and bind an address not on the node yet.
func reusePortFreeBind(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	return errors.Join(err, serr)
}

type metrics struct {
	listeners   prometheus.Gauge
	connections *prometheus.CounterVec
	dialErrors  *prometheus.CounterVec
	active      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		listeners: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_proxy_listeners",
			Help: "Frontends (ClusterIP, node port and external IP sockets) the proxy listens on."}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_proxy_connections_total",
			Help: "TCP connections and UDP flows forwarded, by service port."}, []string{"service"}),
		dialErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_proxy_dial_errors_total",
			Help: "Failed connects to a backend (each retried on another), by service port."}, []string{"service"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shoal_proxy_active",
			Help: "Open TCP connections and UDP flows, by service port."}, []string{"service"}),
	}
	if reg != nil {
		reg.MustRegister(m.listeners, m.connections, m.dialErrors, m.active)
	}
	return m
}
