package containerd

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "shoal"
	DefaultSnapshotter = "overlayfs"
	DefaultBridge      = "shoal0"
	DefaultNetwork     = "shoal"
)

// DefaultCNIBinDirs are where CNI plugins are looked for: Debian's
// containernetworking-plugins first, then the upstream default.
var DefaultCNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Config configures a Driver. Start from DefaultConfig and set Dir.
type Config struct {
	// Dir holds the driver's state, the pods' network namespaces, files
	// and logs; the agent passes DATA_DIR/runtime. Required.
	Dir string
	// Address is containerd's gRPC socket.
	Address string
	// Namespace is the containerd namespace of this agent's containers and
	// images. Agents sharing one containerd must each have their own: the
	// driver treats everything in it as its own.
	Namespace string
	// Snapshotter unpacks images and holds the containers' root filesystems.
	Snapshotter string
	// ConnectTimeout bounds how long New waits for containerd to answer.
	ConnectTimeout time.Duration
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// Peers are asked for an image missing on this node before its
	// registry is (see the package doc); nil asks no one.
	Peers Peers

	// PodCIDR is this node's pod range; host-local IPAM hands out its
	// addresses, the first one goes to the bridge (the pods' gateway).
	// Empty: the range an earlier run saved in Dir, or none until
	// SetPodCIDR (the agent learns it from the cluster); until then pods
	// cannot get a network.
	PodCIDR string
	// Bridge is the Linux bridge the pods' veths join (at most 15 bytes).
	// Agents sharing a host need different bridges and pod CIDRs.
	Bridge string
	// Network is the CNI network name (it keys CNI's cache and IPAM).
	Network string
	// CNIBinDirs are searched for the bridge, host-local and loopback
	// plugins.
	CNIBinDirs []string
	// IPMasq makes the bridge plugin masquerade traffic leaving the pod
	// CIDR; "auto" (the default) turns it on when iptables is installed,
	// "on" and "off" force it.
	IPMasq string

	// MaxLogBytes is the size above which an attempt's log is rotated.
	MaxLogBytes int64
	// LogCheckInterval is how often log sizes are checked for rotation.
	LogCheckInterval time.Duration
	// Clock stamps StartedAt and FinishedAt.
	Clock func() time.Time
}

// DefaultConfig returns the defaults: the system containerd, namespace
// "shoal", overlayfs, pods on bridge shoal0 (the pod CIDR is left to the
// caller), 10 MiB logs checked every second.
func DefaultConfig() Config {
	return Config{
		Address:          DefaultAddress,
		Namespace:        DefaultNamespace,
		Snapshotter:      DefaultSnapshotter,
		ConnectTimeout:   10 * time.Second,
		Bridge:           DefaultBridge,
		Network:          DefaultNetwork,
		CNIBinDirs:       DefaultCNIBinDirs,
		IPMasq:           "auto",
		MaxLogBytes:      10 << 20,
		LogCheckInterval: time.Second,
		Clock:            time.Now,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	const p = "containerd runtime config: "
	switch {
	case c.Dir == "":
		return errors.New(p + "dir: must not be empty")
	case strings.Contains(c.Dir, ","):
		// runc passes namespace paths to its nsexec comma-separated.
		return fmt.Errorf(p+"dir %q: must not contain a comma (runc cannot join namespaces below it)", c.Dir)
	case c.Address == "":
		return errors.New(p + "address: must not be empty")
	case !validIdentifier(c.Namespace):
		return fmt.Errorf(p+"namespace %q: want letters, digits and single . _ - between them", c.Namespace)
	case c.Snapshotter == "":
		return errors.New(p + "snapshotter: must not be empty")
	case c.ConnectTimeout <= 0:
		return errors.New(p + "connect timeout: must be positive")
	case c.Bridge == "" || len(c.Bridge) > 15:
		return fmt.Errorf(p+"bridge %q: want 1 to 15 bytes", c.Bridge)
	case !validIdentifier(c.Network):
		return fmt.Errorf(p+"network %q: want letters, digits and single . _ - between them", c.Network)
	case len(c.CNIBinDirs) == 0:
		return errors.New(p + "cni bin dirs: must not be empty")
	case c.IPMasq != "auto" && c.IPMasq != "on" && c.IPMasq != "off":
		return fmt.Errorf(p+"ip masq %q: want auto, on or off", c.IPMasq)
	case c.MaxLogBytes <= 0:
		return errors.New(p + "max log bytes: must be positive")
	case c.LogCheckInterval <= 0:
		return errors.New(p + "log check interval: must be positive")
	case c.Clock == nil:
		return errors.New(p + "clock: must not be nil")
	}
	if c.PodCIDR != "" {
		if err := validPodCIDR(c.PodCIDR); err != nil {
			return errors.New(p + err.Error())
		}
	}
	return nil
}

// validPodCIDR checks a pod range: IPv4, canonical, at least 4 addresses.
func validPodCIDR(s string) error {
	prefix, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return fmt.Errorf("pod cidr: %w", err)
	case !prefix.Addr().Is4() || prefix.Bits() > 30:
		return fmt.Errorf("pod cidr %s: want an IPv4 range of at least 4 addresses", s)
	case prefix.Masked() != prefix:
		return fmt.Errorf("pod cidr %s: host bits set (did you mean %s?)", s, prefix.Masked())
	}
	return nil
}

// withDefaults fills zero fields from DefaultConfig and makes Dir absolute
// (containerd's shim opens the log files by path).
func (c Config) withDefaults() (Config, error) {
	def := DefaultConfig()
	if c.Address == "" {
		c.Address = def.Address
	}
	if c.Namespace == "" {
		c.Namespace = def.Namespace
	}
	if c.Snapshotter == "" {
		c.Snapshotter = def.Snapshotter
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = def.ConnectTimeout
	}
	if c.Bridge == "" {
		c.Bridge = def.Bridge
	}
	if c.Network == "" {
		c.Network = def.Network
	}
	if len(c.CNIBinDirs) == 0 {
		c.CNIBinDirs = def.CNIBinDirs
	}
	if c.IPMasq == "" {
		c.IPMasq = def.IPMasq
	}
	if c.MaxLogBytes == 0 {
		c.MaxLogBytes = def.MaxLogBytes
	}
	if c.LogCheckInterval == 0 {
		c.LogCheckInterval = def.LogCheckInterval
	}
	if c.Clock == nil {
		c.Clock = def.Clock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Dir != "" {
		abs, err := filepath.Abs(c.Dir)
		if err != nil {
			return c, fmt.Errorf("containerd runtime config: dir: %w", err)
		}
		c.Dir = abs
	}
	return c, nil
}

// ipMasq resolves IPMasq's "auto".
func (c Config) ipMasq() bool {
	switch c.IPMasq {
	case "on":
		return true
	case "off":
		return false
	}
	_, err := exec.LookPath("iptables")
	return err == nil
}
