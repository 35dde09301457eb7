package proxy

import (
	"errors"
	"io"
	"net"
	"time"
)

func (p *Proxy) acceptTCP(l *listener) {
	defer p.conns.Done()
	delay := 5 * time.Millisecond
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, go on.
			p.log.Warn("proxy: accept", "frontend", l.fe.String(), "err", err)
			select {
			case <-time.After(delay):
			case <-p.done:
				return
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		p.conns.Add(1)
		go func() {
			defer p.conns.Done()
			p.serveTCP(l, c)
		}()
	}
}

// serveTCP connects c to a backend, trying others when a connect fails,
// and copies both ways until both sides are done.
func (p *Proxy) serveTCP(l *listener, c *net.TCPConn) {
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	var up *net.TCPConn
	var be *backend
	tried := map[*backend]bool{}
	for up == nil {
		be = l.bal.pick(client, tried)
		if be == nil {
			// No backend: refuse the client outright (RST), as a
			// closed port would.
			_ = c.SetLinger(0)
			_ = c.Close()
			return
		}
		d := net.Dialer{Timeout: p.cfg.DialTimeout}
		conn, err := d.Dial("tcp", be.Addr.String())
		if err != nil {
			tried[be] = true
			p.m.dialErrors.WithLabelValues(l.key).Inc()
			p.log.Debug("proxy: backend connect failed, trying another", "service", l.key, "backend", be.Addr, "pod", be.Pod, "err", err)
			continue
		}
		up = conn.(*net.TCPConn)
	}
	be.active.Add(1)
	p.m.connections.WithLabelValues(l.key).Inc()
	gauge := p.m.active.WithLabelValues(l.key)
	gauge.Inc()
	defer func() {
		be.active.Add(-1)
		gauge.Dec()
	}()
	splice(c, up, p.done)
}

// splice copies a->b and b->a (io.Copy between TCP sockets splices on
// Linux). A side that ends cleanly half-closes the other, so requests
// that end with a FIN still get their answer; an error or Close of the
// proxy ends both.
func splice(a, b *net.TCPConn, stop <-chan struct{}) {
	errc := make(chan error, 2)
	pipe := func(dst, src *net.TCPConn) {
		_, err := io.Copy(dst, src)
		if err == nil {
			_ = dst.CloseWrite()
		}
		errc <- err
	}
	go pipe(b, a)
	go pipe(a, b)
	for pending := 2; pending > 0; {
		select {
		case err := <-errc:
			pending--
			if err != nil {
				_ = a.Close()
				_ = b.Close()
			}
		case <-stop:
			_ = a.Close()
			_ = b.Close()
			stop = nil // wait for both copies to see the close
		}
	}
	_ = a.Close()
	_ = b.Close()
}
