// Command shoal-testapp is the one small binary that Shoal's e2e tests and
// examples run as their workload, like Kubernetes' agnhost. It uses the
// standard library only; build it static with CGO_ENABLED=0.
//
//	shoal-testapp serve [--port 8080] [--version v1]
//	    HTTP server on env POD_IP's address when set, else on all addresses
//	    (env PORT and VERSION are the defaults of the flags):
//	      GET  /             one JSON line: pod, namespace, node (env POD_NAME,
//	                         POD_NAMESPACE, NODE_NAME), version, hostname
//	      GET  /healthz      200 "ok", or 500 after POST /healthz/fail
//	      POST /healthz/fail, /healthz/ok
//	      GET  /ready        200 "ready", or 503 while not ready: before env
//	                         READY_AFTER (a duration) has passed since start, or
//	                         after POST /ready/fail
//	      POST /ready/fail, /ready/ok
//	      GET  /burn         "off", or "on 250m" while burning CPU
//	      POST /burn/on      burn ?millicores=N (default env BURN_MILLICORES,
//	                         else 1000) until POST /burn/off: a load that can
//	                         be switched, for autoscaling
//	    One log line per request on stdout. On SIGTERM it prints
//	    "shutting down" and shuts down gracefully within 5 s.
//	shoal-testapp crash-after DURATION [--code N]
//	    Prints a counter every second, then exits with code N (default 1).
//	shoal-testapp sleep [DURATION]
//	    Sleeps (forever without DURATION); exits 0 on SIGTERM.
//	shoal-testapp echo-udp [--port N]
//	    UDP echo server on env POD_IP's address when set, else on all
//	    addresses (env PORT is the default, else 8080).
//	shoal-testapp check PATH
//	    GETs PATH on the server started in the same working directory (serve
//	    writes its port to ./port; --port 0 picks a free one), at POD_IP or
//	    else 127.0.0.1, and exits 0 on 2xx-3xx: an exec probe for pods that
//	    share their node's address.
//	shoal-testapp set PATH fail|ok|on|off
//	    POSTs PATH/fail, PATH/ok, PATH/on or PATH/off to that server
//	    (set /healthz fail, set /burn on).
//	shoal-testapp print ARGS...
//	    Prints its args and selected env (POD_*, NODE_*, *_SERVICE_HOST,
//	    *_SERVICE_PORT*, and the names listed in env PRINT_ENV), then exits 0.
//	    With env PRINT_RESOLV=1 it also prints the resolv.conf that get and
//	    resolve use, each line prefixed "resolv.conf: ".
//	shoal-testapp resolve NAME [--timeout 5s]
//	    Prints the addresses of NAME, one per line, resolved with the
//	    resolv.conf named by env SHOAL_RESOLV_CONF (which the process runtime
//	    sets, as it cannot mount the pod's at /etc/resolv.conf), else
//	    /etc/resolv.conf: its search list and ndots applied as the C resolver
//	    does, every query sent to its first nameserver on port 53.
//	shoal-testapp get URL [--timeout 5s]
//	    GETs URL, its host resolved as by resolve, and prints the response
//	    body; exits 1 with a one-line error on failure or HTTP status >= 400.
//	shoal-testapp burn [--cpu N] [--mem SIZE] [DURATION]
//	    Keeps N cores busy (default 1) and holds SIZE of memory written
//	    page by page (default 0; 20Mi, 512Ki, or bytes), prints "burning"
//	    once the memory is held, and exits 0 after DURATION (default:
//	    never) or on SIGTERM: a workload for CPU and memory metrics.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: shoal-testapp COMMAND [ARGS]
commands:
  serve [--port 8080] [--version v1]   HTTP server (/, /healthz, /ready, /burn)
  crash-after DURATION [--code N]      count each second, then exit N (default 1)
  sleep [DURATION]                     sleep (forever), exit 0 on SIGTERM
  echo-udp [--port N]                  UDP echo server
  print ARGS...                        print args and selected env
  check PATH                           GET PATH on this directory's server (exec probes)
  resolve NAME [--timeout 5s]          print NAME's addresses (SHOAL_RESOLV_CONF's DNS)
  get URL [--timeout 5s]               GET URL, host resolved as by resolve; print the body
  set PATH fail|ok|on|off              flip /healthz, /ready or /burn of this directory's server
  burn [--cpu N] [--mem SIZE] [DUR]    keep N cores busy and hold SIZE of memory
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code. ctx ends on
// SIGTERM or SIGINT.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, args, stdout)
	case "crash-after":
		var code int
		code, err = crashAfter(ctx, args, stdout)
		if err == nil {
			return code
		}
	case "sleep":
		err = sleepCmd(ctx, args)
	case "echo-udp":
		err = echoUDPCmd(ctx, args, stdout)
	case "print":
		err = printCmd(args, os.Environ(), stdout)
	case "resolve":
		err = resolveCmd(ctx, args, stdout)
	case "get":
		err = getCmd(ctx, args, stdout)
	case "check":
		err = checkCmd(ctx, args, stdout)
	case "set":
		err = setCmd(ctx, args, stdout)
	case "burn":
		err = burnCmd(ctx, args, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "shoal-testapp: unknown command %q\n%s", cmd, usage)
		return 2
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "shoal-testapp %s: %v\n", cmd, err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "shoal-testapp %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type usageError struct{ error }

// parse parses flags anywhere among the arguments ("crash-after 3s --code 2")
// and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// listenHost is the address serve and echo-udp listen on: env POD_IP when
// it is an IP address (pods of one node share its network on the process
// runtime), else "" for all addresses.
func listenHost() string {
	ip, err := netip.ParseAddr(os.Getenv("POD_IP"))
	if err != nil || ip.IsUnspecified() {
		return ""
	}
	return ip.String()
}

func envPort() int {
	p, err := strconv.Atoi(os.Getenv("PORT"))
	if err != nil {
		return 8080
	}
	return p
}

func crashAfter(ctx context.Context, args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("crash-after", flag.ContinueOnError)
	code := fs.Int("code", 1, "exit code")
	pos, err := parse(fs, args)
	if err != nil {
		return 0, err
	}
	if len(pos) != 1 {
		return 0, usageError{errors.New("want exactly one DURATION")}
	}
	d, err := time.ParseDuration(pos[0])
	if err != nil {
		return 0, usageError{err}
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-deadline.C:
			fmt.Fprintf(out, "exiting with code %d\n", *code)
			return *code, nil
		case <-ctx.Done():
			fmt.Fprintln(out, "terminated before crashing")
			return 0, nil
		case <-tick.C:
			fmt.Fprintf(out, "tick %d\n", n)
		}
	}
}

func sleepCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sleep", flag.ContinueOnError)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var expire <-chan time.Time
	switch len(pos) {
	case 0: // forever
	case 1:
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			return usageError{err}
		}
		t := time.NewTimer(d)
		defer t.Stop()
		expire = t.C
	default:
		return usageError{errors.New("want at most one DURATION")}
	}
	select {
	case <-ctx.Done():
	case <-expire:
	}
	return nil
}

func echoUDPCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("echo-udp", flag.ContinueOnError)
	port := fs.Int("port", envPort(), "UDP port")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", pos[0])}
	}
	conn, err := net.ListenPacket("udp", net.JoinHostPort(listenHost(), strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "echoing UDP on %s\n", conn.LocalAddr())
	return echoUDP(ctx, conn)
}

// echoUDP sends every datagram back to its sender until ctx ends.
func echoUDP(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if _, err := conn.WriteTo(buf[:n], addr); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// printCmd prints the args and the env a test may want to check, and with
// PRINT_RESOLV=1 the resolv.conf.
func printCmd(args, environ []string, out io.Writer) error {
	for i, a := range args {
		fmt.Fprintf(out, "arg[%d]=%s\n", i, a)
	}
	extra := map[string]bool{}
	for name := range strings.SplitSeq(envFrom(environ, "PRINT_ENV"), ",") {
		extra[strings.TrimSpace(name)] = true
	}
	var lines []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if extra[name] || strings.HasPrefix(name, "POD_") || strings.HasPrefix(name, "NODE_") ||
			strings.HasSuffix(name, "_SERVICE_HOST") || strings.Contains(name, "_SERVICE_PORT") {
			lines = append(lines, kv)
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	if envFrom(environ, "PRINT_RESOLV") != "1" {
		return nil
	}
	path := cmp.Or(envFrom(environ, resolvConfEnv), "/etc/resolv.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(b)) {
		fmt.Fprintln(out, "resolv.conf: "+strings.TrimSuffix(line, "\n"))
	}
	return nil
}

func envFrom(environ []string, name string) string {
	for _, kv := range slices.Backward(environ) {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
