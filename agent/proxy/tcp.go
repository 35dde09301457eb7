package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
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
			case <-p.ctx.Done():
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
	splice(p.ctx, c, up)
}

// smallCopy is the read size below which bytes are copied through a
// buffer: splice costs more syscalls than it saves for a short request or
// answer. A read that fills it hands the rest of that direction to splice.
const smallCopy = 16 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, smallCopy); return &b }}

// splice copies a->b and b->a: small reads through a pooled buffer, then,
// once a read fills it, io.Copy between the TCP sockets, which splices in
// the kernel on Linux. A side that ends cleanly half-closes the other, so
// requests that end with a FIN still get their answer; an error ends both,
// and so does ctx (the proxy closing).
func splice(ctx context.Context, a, b *net.TCPConn) {
	stop := context.AfterFunc(ctx, func() {
		_ = a.Close()
		_ = b.Close()
	})
	defer stop()
	done := make(chan struct{})
	go func() {
		pipe(b, a)
		close(done)
	}()
	pipe(a, b)
	<-done
	_ = a.Close()
	_ = b.Close()
}

func pipe(dst, src *net.TCPConn) {
	if err := copyAdaptive(dst, src); err != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	_ = dst.CloseWrite()
}

func copyAdaptive(dst, src *net.TCPConn) error {
	bp := bufPool.Get().(*[]byte)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				bufPool.Put(bp)
				return werr
			}
		}
		if err != nil {
			bufPool.Put(bp)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if n == len(buf) {
			break // a bulk transfer: let the kernel move it
		}
	}
	bufPool.Put(bp)
	_, err := io.Copy(dst, src)
	return err
}
