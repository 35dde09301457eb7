package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	ctrclient "github.com/containerd/containerd/v2/client"
	"github.com/vishvananda/netlink"

	"github.com/shoal-dev/shoal/agent/runtime/containerd/containerdtest"
	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"github.com/shoal-dev/shoal/internal/ociimage"
)

const (
	formLimit    = 90 * time.Second
	cleanupLimit = 90 * time.Second
	callTimeout  = 10 * time.Second
)

// env is what the run set up on the host, and its teardown.
type env struct {
	dir    string
	errOut io.Writer

	daemon           *containerdtest.Daemon
	shoalNS, ctrNS   string
	ctrClient        *ctrclient.Client // in ctrNS
	shoalClient      *ctrclient.Client // in shoalNS
	ctrLogs          string
	importTook       time.Duration
	agent            *proc.Proc
	agentData        string
	conn             *client.Conn
	readyTook        time.Duration
	podsMayBeRunning atomic.Bool // set once the agent may have started a pod
}

// preflight says what to install when something the run needs is
// missing, and refuses to take a bridge or pod CIDR that is in use.
func preflight(ctrBin string) error {
	if err := containerdtest.Available(); err != nil {
		return fmt.Errorf("%w; the containerd part needs root, containerd, runc, ctr and the CNI plugins: apt-get install containerd runc containernetworking-plugins", err)
	}
	if _, err := exec.LookPath(ctrBin); err != nil {
		return fmt.Errorf("ctr is not installed (%w): apt-get install containerd (it ships ctr), or set SHOAL_CTR_BIN", err)
	}
	if _, err := netlink.LinkByName(bridge); err == nil {
		return fmt.Errorf("bridge %s exists already: another run is using it, or one was killed before its cleanup (then: ip link del %s)", bridge, bridge)
	}
	cidr := netip.MustParsePrefix(podCIDR)
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		dst, ok := netipPrefix(r.Dst)
		if ok && dst.Overlaps(cidr) && dst.Bits() > 0 {
			return fmt.Errorf("pod CIDR %s overlaps the route to %s already on this host", podCIDR, dst)
		}
	}
	return nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// writeImage writes the image archive of testapp into dir, as make
// testimage does. testapp must be static: the image holds nothing else.
func writeImage(testapp, dir string) (string, error) {
	f, err := elf.Open(testapp)
	if err != nil {
		return "", fmt.Errorf("shoal-testapp %s: %w", testapp, err)
	}
	dynamic := false
	for _, p := range f.Progs {
		dynamic = dynamic || p.Type == elf.PT_INTERP
	}
	f.Close()
	if dynamic {
		return "", fmt.Errorf("shoal-testapp %s is dynamically linked; the image needs a static one (make build builds it with CGO_ENABLED=0)", testapp)
	}
	file, err := ociimage.FromFile(testapp, command[0])
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "shoal-testapp.oci.tar")
	img := ociimage.Image{Name: image, Files: []ociimage.File{file}, Entrypoint: []string{command[0]}}
	if err := ociimage.WriteFile(out, img); err != nil {
		return "", fmt.Errorf("write the image archive: %w", err)
	}
	return out, nil
}

// startDaemon starts the private containerd and imports the image into
// a namespace for the agent and one for ctr.
func (e *env) startDaemon(ctx context.Context, archive string) error {
	d, err := containerdtest.Start(ctx, filepath.Join(e.dir, "containerd"))
	if err != nil {
		return err
	}
	e.daemon = d
	// Namespaces name cgroups and runc state shared by every daemon on
	// the host: a random suffix keeps two runs apart.
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e.shoalNS, e.ctrNS = "shoalbench-"+hex.EncodeToString(b), "ctrbench-"+hex.EncodeToString(b)
	t := time.Now()
	for _, ns := range []string{e.shoalNS, e.ctrNS} {
		if err := d.Import(ctx, ns, archive); err != nil {
			return fmt.Errorf("import the image into namespace %s: %w", ns, err)
		}
	}
	e.importTook = time.Since(t)
	if e.ctrClient, err = d.Client(e.ctrNS); err != nil {
		return err
	}
	if e.shoalClient, err = d.Client(e.shoalNS); err != nil {
		return err
	}
	e.ctrLogs = filepath.Join(e.dir, "ctr-logs")
	return os.MkdirAll(e.ctrLogs, 0o755)
}

// socketFlag is the agent's flag naming containerd's socket in its
// --help: --containerd-socket, or --containerd-address in binaries from
// before the rename (the old name stays as a hidden alias).
func socketFlag(help string) string {
	if strings.Contains(help, "--containerd-socket") {
		return "--containerd-socket"
	}
	return "--containerd-address"
}

// startAgent starts the agent on the daemon and waits until its Node is
// Ready.
func (e *env) startAgent(ctx context.Context, shoalBin string) error {
	help, err := exec.CommandContext(ctx, shoalBin, "agent", "--help").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s agent --help: %w\n%s", shoalBin, err, help)
	}
	e.agentData = filepath.Join(e.dir, "agent")
	if err := os.MkdirAll(e.agentData, 0o755); err != nil {
		return err
	}
	e.agent = &proc.Proc{Name: "shoal agent", Bin: shoalBin, LogPath: filepath.Join(e.dir, "agent.log"),
		Args: []string{"agent", "--name", "ctrbench", "--bind", agentIP, "--data-dir", e.agentData,
			"--bootstrap-expect", "1", "--runtime", "containerd", socketFlag(string(help)), e.daemon.Address,
			"--containerd-namespace", e.shoalNS, "--containerd-bridge", bridge, "--pod-cidr", podCIDR,
			"--proxy=false", "--dns-port", "-1"}}
	if err := e.agent.Start(); err != nil {
		return err
	}
	if e.conn, err = client.Dial(net.JoinHostPort(agentIP, "7948")); err != nil {
		return err
	}
	t := time.Now()
	if err := waitNodeReady(ctx, e.conn); err != nil {
		return fmt.Errorf("agent not Ready: %w", err)
	}
	e.readyTook = time.Since(t)
	return nil
}

func (e *env) printTails() {
	proc.PrintTails(e.errOut, e.agent)
	if e.daemon != nil {
		fmt.Fprintf(e.errOut, "---- last lines of containerd ----\n%s\n", proc.Last([]byte(e.daemon.Log()), 3000))
	}
}

// cleanup undoes what the run did, on a fresh context so that it also
// runs after SIGINT: pods go through the agent (CNI DEL releases their
// addresses and masquerade rules), then the agent and the daemon stop;
// whatever is still left of the run on the host is removed directly.
func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupLimit)
	defer cancel()
	warn := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(e.errOut, "ctrbench: cleanup: %s: %v\n", what, err)
		}
	}
	if e.conn != nil && e.podsMayBeRunning.Load() && e.agent != nil && !e.agent.Exited() {
		s := &shoalSide{env: e}
		_, err := s.removeAll(ctx)
		warn("delete the pods through the agent", err)
	}
	if e.conn != nil {
		_ = e.conn.Close()
	}
	if e.agent != nil {
		warn("stop the agent", e.agent.Stop())
	}
	for _, c := range []*ctrclient.Client{e.ctrClient, e.shoalClient} {
		if c != nil {
			_ = c.Close()
		}
	}
	if e.daemon != nil {
		warn("stop containerd", e.daemon.Stop())
	}
	if n, err := removeMasqRules(ctx, netip.MustParsePrefix(podCIDR)); n > 0 || err != nil {
		fmt.Fprintf(e.errOut, "ctrbench: cleanup: removed %d masquerade rules of pods of %s left behind\n", n, podCIDR)
		warn("masquerade rules", err)
	}
	if n, err := unmountUnder(e.dir); n > 0 || err != nil {
		fmt.Fprintf(e.errOut, "ctrbench: cleanup: unmounted %d mounts left under %s\n", n, e.dir)
		warn("unmount", err)
	}
	if e.daemon != nil { // the agent makes the bridge with its first pod
		warn("delete bridge "+bridge, containerdtest.DeleteLink(bridge))
	}
}

// mountsUnder returns the mount points at or below dir, deepest last.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out, sc.Err()
}

// unmountUnder lazily unmounts every mount below dir (a pod's network
// namespace the agent did not get to remove), deepest first.
func unmountUnder(dir string) (int, error) {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return 0, err
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mounts[i], err))
		}
	}
	return len(mounts), errors.Join(errs...)
}

// masqRule is a rule of the nat table's POSTROUTING chain that masquerade
// set-up added for the run's pods: the CNI bridge plugin's, from one pod's
// address to a chain of its own (deleted with it), or the agent's
// "pod to pod without NAT" RETURN from the whole pod CIDR, which the agent
// leaves in place when it stops, as it leaves its pods.
type masqRule struct {
	num   int    // position in POSTROUTING, from 1
	chain string // the rule's CNI-... target; "" for the agent's RETURN
}

// agentMasqComment is the comment of the agent's rule
// (agent/podroutes.NoMasquerade).
const agentMasqComment = "/* shoal: pod to pod without NAT */"

// parseMasqRules picks, from `iptables -t nat -L POSTROUTING -n
// --line-numbers`, the rules from an address in cidr to a CNI- chain and
// the agent's rule from cidr itself.
func parseMasqRules(listing string, cidr netip.Prefix) []masqRule {
	var out []masqRule
	for _, line := range strings.Split(listing, "\n") {
		// num target prot opt source destination [extra]
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		num, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		src, err := netip.ParsePrefix(f[4])
		if err != nil {
			a, aerr := netip.ParseAddr(f[4])
			if aerr != nil {
				continue
			}
			src = netip.PrefixFrom(a, a.BitLen())
		}
		switch {
		case strings.HasPrefix(f[1], "CNI-") && cidr.Contains(src.Addr()) && src.Bits() >= cidr.Bits():
			out = append(out, masqRule{num: num, chain: f[1]})
		case f[1] == "RETURN" && src == cidr && strings.Contains(line, agentMasqComment):
			out = append(out, masqRule{num: num})
		}
	}
	return out
}

// removeMasqRules deletes the agent's rule for cidr and the masquerade
// rules and chains of pods in cidr that the agent could not release (it
// died first), and returns how many of the latter there were. The pod
// CIDR is the run's own, so nothing of another agent matches.
func removeMasqRules(ctx context.Context, cidr netip.Prefix) (int, error) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return 0, nil
	}
	b, err := exec.CommandContext(ctx, "iptables", "-w", "-t", "nat", "-L", "POSTROUTING", "-n", "--line-numbers").Output()
	if err != nil {
		return 0, fmt.Errorf("iptables -t nat -L POSTROUTING: %w", err)
	}
	rules := parseMasqRules(string(b), cidr)
	var errs []error
	// Highest number first, so the others keep their numbers.
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		cmds := [][]string{{"-D", "POSTROUTING", strconv.Itoa(r.num)}}
		if r.chain != "" {
			cmds = append(cmds, []string{"-F", r.chain}, []string{"-X", r.chain})
		}
		for _, args := range cmds {
			if out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w", "-t", "nat"}, args...)...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out))))
			}
		}
	}
	leftovers := 0
	for _, r := range rules {
		if r.chain != "" {
			leftovers++
		}
	}
	return leftovers, errors.Join(errs...)
}
