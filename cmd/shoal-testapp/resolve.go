package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// resolvConfEnv names the pod's resolv.conf on the process runtime, which
// cannot mount it at /etc/resolv.conf.
const resolvConfEnv = "SHOAL_RESOLV_CONF"

// resolvConfPath is the resolv.conf that get and resolve use.
func resolvConfPath() string {
	return envOr(resolvConfEnv, "/etc/resolv.conf")
}

// resolvConfig is what get and resolve use of a resolv.conf.
type resolvConfig struct {
	nameserver string   // the first nameserver; 127.0.0.1 when none, as in libc
	search     []string // without trailing dots
	ndots      int
}

// parseResolvConf reads a resolv.conf as the C resolver does: the first
// nameserver, the last search (or domain) line, ndots (default 1, at most
// 15).
func parseResolvConf(b []byte) resolvConfig {
	rc := resolvConfig{ndots: 1}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if rc.nameserver == "" {
				rc.nameserver = f[1]
			}
		case "search", "domain":
			rc.search = nil
			for _, s := range f[1:] {
				if s = strings.TrimSuffix(s, "."); s != "" {
					rc.search = append(rc.search, s)
				}
			}
		case "options":
			for _, o := range f[1:] {
				if v, ok := strings.CutPrefix(o, "ndots:"); ok {
					if n, err := strconv.Atoi(v); err == nil && n >= 0 {
						rc.ndots = min(n, 15)
					}
				}
			}
		}
	}
	if rc.nameserver == "" {
		rc.nameserver = "127.0.0.1"
	}
	return rc
}

// candidates returns the fully qualified names to try for name, in order,
// as the C resolver does: a name ending in a dot is only itself; a name
// with fewer dots than ndots is tried with each search domain, then alone;
// other names alone first, then with each search domain.
func candidates(name string, rc resolvConfig) []string {
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	var searched []string
	for _, s := range rc.search {
		searched = append(searched, name+"."+s+".")
	}
	if strings.Count(name, ".") < rc.ndots {
		return append(searched, name+".")
	}
	return append([]string{name + "."}, searched...)
}

// lookup resolves names with one resolv.conf against one DNS server.
type lookup struct {
	conf   resolvConfig
	server string // host:port of the DNS server
}

// newLookup reads the resolv.conf of resolvConfPath; its first nameserver
// is asked on port 53.
func newLookup() (*lookup, error) {
	path := resolvConfPath()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rc := parseResolvConf(b)
	return &lookup{conf: rc, server: net.JoinHostPort(rc.nameserver, "53")}, nil
}

// resolve returns the addresses of host: an IP literal as is, a name from
// the first candidate that has addresses.
func (l *lookup) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	r := &net.Resolver{
		PreferGo: true,
		// Every query goes to our server, whatever the node's resolv.conf
		// names; the names asked are fully qualified, so the node's search
		// list does not apply.
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, l.server)
		},
	}
	var errs []error
	for _, name := range candidates(host, l.conf) {
		ips, err := r.LookupNetIP(ctx, "ip", name)
		if err == nil && len(ips) > 0 {
			for i := range ips {
				ips[i] = ips[i].Unmap()
			}
			return ips, nil
		}
		if err == nil {
			err = fmt.Errorf("lookup %s: no addresses", name)
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("resolve %s with %s: %w", host, l.server, errors.Join(errs...))
}

// resolveCmd prints the addresses of NAME, one per line.
func resolveCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{errors.New("want exactly one NAME")}
	}
	l, err := newLookup()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return l.print(ctx, pos[0], out)
}

func (l *lookup) print(ctx context.Context, name string, out io.Writer) error {
	ips, err := l.resolve(ctx, name)
	if err != nil {
		return oneLine(err)
	}
	for _, ip := range ips {
		fmt.Fprintln(out, ip)
	}
	return nil
}

// getCmd GETs URL, its host resolved with resolve's rules, and prints the
// response body.
func getCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{errors.New("want exactly one URL")}
	}
	l, err := newLookup()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return l.get(ctx, pos[0], out)
}

// get GETs rawURL, connecting to the resolved addresses of its host in
// turn; the request keeps the URL's host (Host header, TLS server name).
func (l *lookup) get(ctx context.Context, rawURL string, out io.Writer) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return usageError{err}
	}
	port := u.Port()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return usageError{fmt.Errorf("URL %q: scheme must be http or https", rawURL)}
	case u.Hostname() == "":
		return usageError{fmt.Errorf("URL %q: no host", rawURL)}
	case port == "" && u.Scheme == "https":
		port = "443"
	case port == "":
		port = "80"
	}
	ips, err := l.resolve(ctx, u.Hostname())
	if err != nil {
		return oneLine(err)
	}
	tr := &http.Transport{
		Proxy:             nil, // the pod talks to the service itself
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			var errs []error
			for _, ip := range ips {
				c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
			}
			return nil, errors.Join(errs...)
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return oneLine(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return fmt.Errorf("GET %s: read body: %w", rawURL, err)
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: HTTP %d", rawURL, resp.StatusCode)
	}
	return nil
}

// oneLine keeps an error to one line (errors.Join puts each on its own).
func oneLine(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
}
