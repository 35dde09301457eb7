// Package lab builds the multi-host topology of the Vagrant lab on one
// machine: every node is a network namespace with one interface on a
// shared Linux bridge, so the nodes are hosts on one L2 segment, as VMs on
// a private network are. The bridge lives in the caller's namespace with
// the segment's first address, so the machine itself (tests, the CLI)
// reaches every node; nothing is routed beyond the segment.
//
// It drives iproute2 (`ip`) and starts node processes with nsenter(1),
// which enters only the network namespace: the mount namespace stays the
// machine's, so the network namespaces an agent makes for pods are
// visible to containerd and runc.
package lab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultSubnet is the segment the nodes share; it overlaps neither the
// default cluster CIDR (10.244.0.0/16) nor the service CIDR (10.96.0.0/12).
var DefaultSubnet = netip.MustParsePrefix("10.250.77.0/24")

// Config shapes a lab.
type Config struct {
	// Name prefixes the bridge and the namespaces (1 to 8 letters or
	// digits); labs with different names coexist.
	Name string
	// Nodes is how many hosts to make (1 to 200).
	Nodes int
	// Subnet is the segment (default DefaultSubnet): the bridge gets its
	// first host address, node i the (i+2)th.
	Subnet netip.Prefix
}

// Lab is a bridge and its nodes.
type Lab struct {
	Name    string
	Bridge  string
	Gateway netip.Addr // the bridge's address
	Subnet  netip.Prefix
	Nodes   []Node
}

// Node is one network namespace on the bridge.
type Node struct {
	// NetNS is the namespace's name (`ip netns`), NetNSPath its file.
	NetNS     string
	NetNSPath string
	// IP is the node's address on the segment.
	IP netip.Addr
}

// Up makes the lab; on error it removes what it made. Leftovers of an
// earlier lab of the same name (a crashed run) are removed first.
func Up(cfg Config) (*Lab, error) {
	l, err := plan(cfg)
	if err != nil {
		return nil, err
	}
	_ = l.Down()
	if err := l.up(); err != nil {
		_ = l.Down()
		return nil, err
	}
	return l, nil
}

// Plan returns the lab cfg describes without making anything (call Down
// on it to remove a lab made earlier); an invalid cfg gives an empty lab.
func Plan(cfg Config) *Lab {
	l, err := plan(cfg)
	if err != nil {
		return &Lab{}
	}
	return l
}

func plan(cfg Config) (*Lab, error) {
	if cfg.Name == "" || len(cfg.Name) > 8 || strings.Trim(cfg.Name, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return nil, fmt.Errorf("lab name %q: want 1 to 8 lowercase letters or digits", cfg.Name)
	}
	if cfg.Nodes < 1 || cfg.Nodes > 200 {
		return nil, fmt.Errorf("lab %s: %d nodes: want 1 to 200", cfg.Name, cfg.Nodes)
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = DefaultSubnet
	}
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 24 {
		return nil, fmt.Errorf("lab %s: subnet %s: want an IPv4 range of at least a /24", cfg.Name, cfg.Subnet)
	}
	cfg.Subnet = cfg.Subnet.Masked()
	l := &Lab{Name: cfg.Name, Bridge: "lab" + cfg.Name, Subnet: cfg.Subnet, Gateway: cfg.Subnet.Addr().Next()}
	ip := l.Gateway
	for i := range cfg.Nodes {
		ip = ip.Next()
		ns := fmt.Sprintf("lab%s-n%d", cfg.Name, i+1)
		l.Nodes = append(l.Nodes, Node{NetNS: ns, NetNSPath: filepath.Join("/run/netns", ns), IP: ip})
	}
	return l, nil
}

func (l *Lab) up() error {
	bits := fmt.Sprint(l.Subnet.Bits())
	steps := [][]string{
		{"link", "add", l.Bridge, "type", "bridge"},
		{"addr", "add", l.Gateway.String() + "/" + bits, "dev", l.Bridge},
		{"link", "set", l.Bridge, "up"},
	}
	for i, n := range l.Nodes {
		host := fmt.Sprintf("%sv%d", l.Bridge, i+1) // at most 15 bytes
		steps = append(steps,
			[]string{"netns", "add", n.NetNS},
			[]string{"link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", n.NetNS},
			[]string{"link", "set", host, "master", l.Bridge},
			[]string{"link", "set", host, "up"},
			[]string{"-n", n.NetNS, "link", "set", "lo", "up"},
			[]string{"-n", n.NetNS, "addr", "add", n.IP.String() + "/" + bits, "dev", "eth0"},
			[]string{"-n", n.NetNS, "link", "set", "eth0", "up"},
			// Everything off the segment goes to the machine (it routes
			// nothing further; the route only gives the node a default).
			[]string{"-n", n.NetNS, "route", "add", "default", "via", l.Gateway.String()},
		)
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return fmt.Errorf("lab %s: %w", l.Name, err)
		}
	}
	for _, n := range l.Nodes {
		// Nodes forward for their pods (the CNI bridge plugin would turn
		// it on at the first pod; routes to other nodes' pods need it
		// from the start).
		if err := n.sysctl("net.ipv4.ip_forward", "1"); err != nil {
			return fmt.Errorf("lab %s: %w", l.Name, err)
		}
	}
	return nil
}

// Down removes the nodes and the bridge (the veths go with their
// namespaces). It is safe to call on a lab that is partly or not made.
func (l *Lab) Down() error {
	var errs []error
	for _, n := range l.Nodes {
		if _, err := os.Stat(n.NetNSPath); err == nil {
			if err := ip("netns", "delete", n.NetNS); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if l.Bridge == "" {
		return errors.Join(errs...)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", l.Bridge)); err == nil {
		if err := ip("link", "delete", l.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Command returns cmd (a path and its arguments) set up to run in the
// node's network namespace.
func (n Node) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + n.NetNSPath, "--", name}, args...)...)
}

// Prefix is the command line that Command puts in front of a program.
func (n Node) Prefix() []string { return []string{"nsenter", "--net=" + n.NetNSPath, "--"} }

// IPCmd runs `ip -n NETNS args...` and returns its output.
func (n Node) IPCmd(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"-n", n.NetNS}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip -n %s %s: %v: %s", n.NetNS, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func (n Node) sysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	out, err := n.Command("sh", "-c", "echo "+value+" > "+path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %v: %s", key, value, n.NetNS, err, bytes.TrimSpace(out))
	}
	return nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// UnmountUnder detaches every mount below dir (the network namespaces an
// agent bind-mounts for its pods), deepest first.
func UnmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return err
	}
	var under []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			under = append(under, f[1])
		}
	}
	slices.SortFunc(under, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, m := range under {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// Available reports why labs cannot be made here (nil when they can):
// they need root, iproute2 and nsenter.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	for _, bin := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found (apt-get install iproute2 util-linux)", bin)
		}
	}
	return nil
}
