package proxy

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// udpFrontend serves one UDP frontend: a flow per client address.
type udpFrontend struct {
	p    *Proxy
	conn *net.UDPConn
	key  string
	bal  *balancer

	mu     sync.Mutex
	flows  map[netip.AddrPort]*flow
	closed bool
	wg     sync.WaitGroup
}

// flow is one client's traffic to one backend, on its own connected socket.
type flow struct {
	client netip.AddrPort
	be     *backend
	up     *net.UDPConn
	last   atomic.Int64 // unix nanos of the last packet either way
}

func newUDPFrontend(p *Proxy, conn *net.UDPConn, key string, b *balancer) *udpFrontend {
	return &udpFrontend{p: p, conn: conn, key: key, bal: b, flows: map[netip.AddrPort]*flow{}}
}

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

func (u *udpFrontend) serve() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				u.wg.Wait()
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		f := u.flow(from)
		if f == nil {
			continue // no backend: dropped, as by a closed port
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := f.up.Write(buf[:n]); err != nil {
			u.end(f)
		}
	}
}

// flow returns from's flow, opening one to a backend the balancer picks.
func (u *udpFrontend) flow(from netip.AddrPort) *flow {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f := u.flows[from]; f != nil || u.closed {
		return f
	}
	tried := map[*backend]bool{}
	for {
		be := u.bal.pick(from.Addr(), tried)
		if be == nil {
			return nil
		}
		up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(be.Addr))
		if err != nil {
			tried[be] = true
			u.p.m.dialErrors.WithLabelValues(u.key).Inc()
			continue
		}
		f := &flow{client: from, be: be, up: up}
		f.last.Store(time.Now().UnixNano())
		u.flows[from] = f
		be.active.Add(1)
		u.p.m.connections.WithLabelValues(u.key).Inc()
		u.p.m.active.WithLabelValues(u.key).Inc()
		u.wg.Add(1)
		go u.replies(f)
		return f
	}
}

// replies sends the backend's datagrams back to the client from the
// frontend's address until the flow is idle or the backend refuses.
func (u *udpFrontend) replies(f *flow) {
	defer u.wg.Done()
	defer u.end(f)
	idle := u.p.cfg.UDPIdleTimeout
	buf := make([]byte, maxDatagram)
	for {
		_ = f.up.SetReadDeadline(time.Unix(0, f.last.Load()).Add(idle))
		n, err := f.up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, f.last.Load())) < idle {
				continue // traffic came in meanwhile
			}
			return
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := u.conn.WriteToUDPAddrPort(buf[:n], f.client); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// end removes f and closes its socket (once).
func (u *udpFrontend) end(f *flow) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.flows[f.client] != f {
		return
	}
	delete(u.flows, f.client)
	_ = f.up.Close()
	f.be.active.Add(-1)
	u.p.m.active.WithLabelValues(u.key).Dec()
}

func (u *udpFrontend) close() {
	u.mu.Lock()
	u.closed = true
	flows := make([]*flow, 0, len(u.flows))
	for _, f := range u.flows {
		flows = append(flows, f)
	}
	u.mu.Unlock()
	_ = u.conn.Close()
	for _, f := range flows {
		u.end(f)
	}
}
