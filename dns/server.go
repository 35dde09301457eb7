package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// shutdownTimeout bounds how long Close waits for queries in flight.
const shutdownTimeout = 5 * time.Second

// Server is the DNS server an agent runs: it answers from the Records last
// given to SetRecords and forwards other names upstream. It is safe for
// concurrent use.
type Server struct {
	cfg     ServerConfig
	log     *slog.Logger
	records atomic.Pointer[Records]
	fwd     *forwarder

	// ctx is cancelled by Close, abandoning upstream exchanges in flight.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex // guards the fields below
	started  bool
	closed   bool
	addr     string
	udp, tcp *dns.Server
	wg       sync.WaitGroup // the two serve goroutines
}

// NewServer checks cfg (zero fields take DefaultConfig values) and returns
// a server answering from an empty snapshot until SetRecords is called. It
// does not listen until Start.
func NewServer(cfg ServerConfig) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "dns"), ctx: ctx, cancel: cancel}
	s.fwd = &forwarder{
		upstreams: cfg.Upstreams,
		timeout:   cfg.UpstreamTimeout,
		now:       time.Now,
		log:       s.log,
	}
	if cfg.CacheSize > 0 {
		s.fwd.cache = newCache(cfg.CacheSize)
	}
	s.records.Store(NewRecords(cfg.Domain, nil, nil))
	return s, nil
}

// SetRecords makes rec the snapshot answering the next query; queries in
// flight finish with the one they started with. nil means an empty
// snapshot. A snapshot for another domain is a wiring bug: it is logged and
// ignored, keeping the server answering for the configured domain.
func (s *Server) SetRecords(rec *Records) {
	if rec == nil {
		rec = NewRecords(s.cfg.Domain, nil, nil)
	}
	if want := normalizeDomain(s.cfg.Domain); rec.Domain() != want {
		s.log.Error("records ignored: wrong domain", "domain", rec.Domain(), "want", want)
		return
	}
	s.records.Store(rec)
}

// Start listens on the configured address over UDP and TCP and returns once
// both listeners serve. With port 0, UDP and TCP share one free port,
// reported by Addr.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("start dns server: already started or closed")
	}
	pc, ln, err := listen(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("start dns server on %s: %w", s.cfg.Addr, err)
	}
	s.started = true
	s.addr = pc.LocalAddr().String()
	handler := dns.HandlerFunc(s.serveDNS)
	s.udp = &dns.Server{PacketConn: pc, Handler: handler}
	s.tcp = &dns.Server{Listener: ln, Handler: handler}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if err := s.serve(srv); err != nil {
			s.closed = true
			s.shutdown(s.udp, s.tcp) // whichever one started
			return fmt.Errorf("start dns server on %s: %w", s.addr, err)
		}
	}
	s.log.Info("dns server listening", "addr", s.addr, "domain", s.cfg.Domain, "upstreams", s.cfg.Upstreams)
	return nil
}

// serve runs srv in a goroutine owned by s.wg and returns once it serves,
// or with its error if it stops first.
func (s *Server) serve(srv *dns.Server) error {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.ActivateAndServe()
		if err != nil && s.ctx.Err() == nil {
			s.log.Error("dns listener stopped", "addr", s.addr, "err", err)
		}
		done <- err
	}()
	select {
	case <-started:
		return nil
	case err := <-done:
		if err == nil {
			err = errors.New("listener stopped before serving")
		}
		return err
	}
}

// listen opens the UDP socket and a TCP listener on the same address. With
// port 0 the kernel picks the UDP port, which TCP may find taken: then it
// tries again with a new port.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, err
	}
	const attempts = 10
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if ap.Port() != 0 || i == attempts-1 {
			return nil, nil, err
		}
	}
}

// Addr is the ip:port the server listens on over UDP and TCP, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops the listeners and waits for queries in flight, abandoning
// their upstream exchanges. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	udp, tcp := s.udp, s.tcp
	s.mu.Unlock()
	return s.shutdown(udp, tcp)
}

// shutdown stops udp and tcp (either may be nil) and waits for their
// goroutines.
func (s *Server) shutdown(udp, tcp *dns.Server) error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	for _, srv := range []*dns.Server{udp, tcp} {
		if srv == nil {
			continue
		}
		// A server that never started has nothing to shut down; its
		// socket is still ours to close.
		if err := srv.ShutdownContext(ctx); err != nil {
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("stop dns server: %w", err))
			}
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// serveDNS is the miekg handler: the local answer, else the forwarded one,
// fitted to the transport.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp, forward := respond(s.records.Load(), req, s.cfg.TTL)
	if forward {
		resp = s.fwd.forward(s.ctx, req)
	}
	if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
		fitUDP(resp, req)
	} else {
		resp.Compress = true
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("write reply failed", "remote", w.RemoteAddr().String(), "err", err)
	}
}
