package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// server is a TCP backend: it writes its name, then echoes lines.
func server(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).AddrPort()
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).AddrPort()
	}
}

func newProxy(t *testing.T) *Proxy {
	p := New(Config{DialTimeout: time.Second, UDPIdleTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { p.Close() })
	return p
}

// hello connects to fe and returns the backend's name and the connection.
func hello(t *testing.T, fe netip.AddrPort) (string, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fe.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	name, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("reading the backend's name through %s: %v", fe, err)
	}
	return strings.TrimSpace(name), c
}

func TestTCPRoundRobinAndRetry(t *testing.T) {
	p := newProxy(t)
	fe := freePort(t, "tcp")
	dead := freePort(t, "tcp") // nothing listens: connects are refused
	port := Port{Service: "default/web", Name: "http", Proto: corev1.ProtocolTCP, Frontends: []netip.AddrPort{fe},
		Backends: []Backend{{Addr: server(t, "a"), Pod: "a"}, {Addr: dead, Pod: "dead"}, {Addr: server(t, "b"), Pod: "b"}}}
	if err := p.Sync([]Port{port}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range 30 {
		name, c := hello(t, fe)
		c.Close()
		got[name]++
	}
	// Every connection reached a live backend: the dead one's turns were
	// retried on the next.
	if got["a"]+got["b"] != 30 || got["a"] < 10 || got["b"] < 10 {
		t.Fatalf("30 connections: %v", got)
	}
}

func TestTCPHalfCloseAndEcho(t *testing.T) {
	p := newProxy(t)
	fe := freePort(t, "tcp")
	if err := p.Sync([]Port{{Service: "s", Proto: corev1.ProtocolTCP, Frontends: []netip.AddrPort{fe},
		Backends: []Backend{{Addr: server(t, "a")}}}}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", fe.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	payload := strings.Repeat("x", 1<<20)
	go func() {
		_, _ = io.WriteString(c, payload)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(all) != "a\n"+payload {
		t.Fatalf("echo through the proxy: %d bytes back, want %d", len(all), len(payload)+2)
	}
}

func TestDrainingAndRemovedFrontends(t *testing.T) {
	p := newProxy(t)
	fe := freePort(t, "tcp")
	a, b := server(t, "a"), server(t, "b")
	port := Port{Service: "s", Proto: corev1.ProtocolTCP, Frontends: []netip.AddrPort{fe}, Backends: []Backend{{Addr: a, Pod: "a"}}}
	if err := p.Sync([]Port{port}); err != nil {
		t.Fatal(err)
	}
	name, open := hello(t, fe)
	defer open.Close()
	if name != "a" {
		t.Fatalf("got %s", name)
	}
	// a leaves (not Ready any more), b joins.
	port.Backends = []Backend{{Addr: b, Pod: "b"}}
	if err := p.Sync([]Port{port}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		name, c := hello(t, fe)
		c.Close()
		if name != "b" {
			t.Fatalf("new connection went to %s after it left", name)
		}
	}
	// The connection open to a still works.
	fmt.Fprintf(open, "still here\n")
	line, err := bufio.NewReader(open).ReadString('\n')
	if err != nil || line != "still here\n" {
		t.Fatalf("open connection to a drained backend: %q %v", line, err)
	}
	// No backend: refused at once.
	port.Backends = nil
	_ = p.Sync([]Port{port})
	c, err := net.Dial("tcp", fe.String())
	if err == nil {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a service with no backend accepted and answered")
	}
	// The service gone: the frontend closes.
	if err := p.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", fe.String()); err == nil {
		c.Close()
		t.Fatal("frontend still listening after its service left")
	}
}

func TestSyncReportsAndRetriesFailedListens(t *testing.T) {
	p := newProxy(t)
	// Something else holds the port without SO_REUSEPORT.
	hog, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fe := hog.Addr().(*net.TCPAddr).AddrPort()
	port := Port{Service: "s", Proto: corev1.ProtocolTCP, Frontends: []netip.AddrPort{fe}, Backends: []Backend{{Addr: server(t, "a")}}}
	if err := p.Sync([]Port{port}); err == nil || !strings.Contains(err.Error(), fe.String()) || p.Failed() != 1 {
		t.Fatalf("listen on a held port: %v (failed %d)", err, p.Failed())
	}
	hog.Close()
	if err := p.Sync([]Port{port}); err != nil || p.Failed() != 0 {
		t.Fatalf("retry after the port freed: %v", err)
	}
	if name, c := hello(t, fe); name != "a" {
		t.Fatalf("got %s", name)
	} else {
		c.Close()
	}
}

func TestTwoProxiesShareAFrontend(t *testing.T) {
	fe := freePort(t, "tcp")
	for _, name := range []string{"one", "two"} {
		p := newProxy(t)
		if err := p.Sync([]Port{{Service: "s", Proto: corev1.ProtocolTCP, Frontends: []netip.AddrPort{fe},
			Backends: []Backend{{Addr: server(t, name)}}}}); err != nil {
			t.Fatalf("proxy %s: %v", name, err)
		}
	}
}

func TestUDPFlows(t *testing.T) {
	// A UDP backend that answers "<name>:<payload>".
	udpServer := func(name string) netip.AddrPort {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo([]byte(name+":"+string(buf[:n])), from)
			}
		}()
		return pc.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	p := newProxy(t)
	fe := freePort(t, "udp")
	if err := p.Sync([]Port{{Service: "s", Proto: corev1.ProtocolUDP, Frontends: []netip.AddrPort{fe},
		Backends: []Backend{{Addr: udpServer("a"), Pod: "a"}, {Addr: udpServer("b"), Pod: "b"}}}}); err != nil {
		t.Fatal(err)
	}
	ask := func(c net.Conn, msg string) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reply to %q: %v", msg, err)
		}
		return string(buf[:n])
	}
	seen := map[string]bool{}
	for range 4 {
		c, err := net.Dial("udp", fe.String())
		if err != nil {
			t.Fatal(err)
		}
		first := ask(c, "1")
		backend, _, _ := strings.Cut(first, ":")
		seen[backend] = true
		// One client's datagrams stay on one backend (its flow).
		for i := range 5 {
			if got := ask(c, fmt.Sprint(i)); got != backend+":"+fmt.Sprint(i) {
				t.Fatalf("flow moved: %q after %q", got, first)
			}
		}
		// Replies come from the frontend's address.
		if c.RemoteAddr().String() != fe.String() {
			t.Fatalf("reply address %s", c.RemoteAddr())
		}
		c.Close()
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("four clients reached only %v", seen)
	}
}

func TestCloseEndsConnections(t *testing.T) {
	p := New(Config{})
	fe := freePort(t, "tcp")
	if err := p.Sync([]Port{{Service: "s", Proto: corev1.ProtocolTCP, Frontends: []netip.AddrPort{fe},
		Backends: []Backend{{Addr: server(t, "a")}}}}); err != nil {
		t.Fatal(err)
	}
	_, c := hello(t, fe)
	defer c.Close()
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a connection open")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	}
}
