package gossip

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

// DefaultPort is the gossip port (TCP and UDP) on an agent's bound IP.
const DefaultPort = 7946

// Config configures a Mesh. Start from DefaultConfig and set Name, BindAddr
// and Meta.
type Config struct {
	// Name identifies the node; it must be unique in the cluster.
	Name string
	// BindAddr is the IP to listen on.
	BindAddr string
	// BindPort is the TCP and UDP port to listen on; 0 picks a free port.
	BindPort int
	// AdvertiseAddr and AdvertisePort are what other nodes use to reach this
	// one, when that differs from the bound address (NAT). Optional.
	AdvertiseAddr string
	AdvertisePort int

	// Meta holds the node facts advertised to the cluster. Nil advertises an
	// empty NodeMeta. Its encoding must fit in memberlist.MetaMaxSize.
	Meta *shoalpb.NodeMeta

	// SecretKey, when set, encrypts gossip (AES, 16, 24 or 32 bytes). All
	// nodes of a cluster need the same key.
	SecretKey []byte

	// Logger receives the mesh's logs and memberlist's own; nil discards them.
	Logger *slog.Logger

	// Failure detection timing (see memberlist.Config for the exact meaning).
	// The defaults are LAN timings tuned so that a killed agent is declared
	// dead within a few seconds.
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	IndirectChecks          int
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	GossipInterval          time.Duration
	GossipNodes             int
	GossipToTheDeadTime     time.Duration
	RetransmitMult          int
	PushPullInterval        time.Duration
	TCPTimeout              time.Duration
	// DeadNodeReclaimTime is how long a dead node's name stays bound to its
	// old address; after it, an agent restarted with the same name on a new
	// address can rejoin.
	DeadNodeReclaimTime time.Duration

	// BroadcastTimeout bounds how long UpdateMeta waits for the update to be
	// sent to at least one other node.
	BroadcastTimeout time.Duration
	// EventBuffer is the capacity of the Events channel. When it is full the
	// oldest event is dropped (see Mesh.Events).
	EventBuffer int

	// Transport replaces memberlist's UDP/TCP transport (for example with an
	// in-memory one in tests). When set, BindAddr and BindPort are not used.
	Transport memberlist.NodeAwareTransport
}

// DefaultConfig returns a LAN configuration, faster than memberlist's LAN
// defaults: a killed agent is declared dead in about 2-4 s.
func DefaultConfig() Config {
	return Config{
		BindAddr:                "0.0.0.0",
		BindPort:                DefaultPort,
		ProbeInterval:           500 * time.Millisecond,
		ProbeTimeout:            250 * time.Millisecond,
		IndirectChecks:          3,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 3,
		GossipInterval:          100 * time.Millisecond,
		GossipNodes:             3,
		GossipToTheDeadTime:     15 * time.Second,
		RetransmitMult:          4,
		PushPullInterval:        15 * time.Second,
		TCPTimeout:              2 * time.Second,
		DeadNodeReclaimTime:     time.Second,
		BroadcastTimeout:        5 * time.Second,
		EventBuffer:             1024,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Name == "" {
		return errors.New("gossip config: name: must not be empty")
	}
	if c.Transport == nil {
		if net.ParseIP(c.BindAddr) == nil {
			return fmt.Errorf("gossip config: bind addr %q: not an IP address", c.BindAddr)
		}
		if c.BindPort < 0 || c.BindPort > 65535 {
			return fmt.Errorf("gossip config: bind port %d: out of range", c.BindPort)
		}
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return fmt.Errorf("gossip config: advertise addr %q: not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return fmt.Errorf("gossip config: advertise port %d: out of range", c.AdvertisePort)
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("gossip config: secret key: %d bytes, want 16, 24 or 32", len(c.SecretKey))
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"probe interval", c.ProbeInterval},
		{"probe timeout", c.ProbeTimeout},
		{"gossip interval", c.GossipInterval},
		{"gossip to the dead time", c.GossipToTheDeadTime},
		{"push pull interval", c.PushPullInterval},
		{"tcp timeout", c.TCPTimeout},
		{"broadcast timeout", c.BroadcastTimeout},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return fmt.Errorf("gossip config: %s: must be positive, got %v", d.name, d.d)
		}
	}
	if c.DeadNodeReclaimTime < 0 {
		return fmt.Errorf("gossip config: dead node reclaim time: must not be negative, got %v", c.DeadNodeReclaimTime)
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("gossip config: probe timeout %v: must be less than probe interval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	counts := []struct {
		name string
		n    int
	}{
		{"indirect checks", c.IndirectChecks},
		{"suspicion mult", c.SuspicionMult},
		{"suspicion max timeout mult", c.SuspicionMaxTimeoutMult},
		{"gossip nodes", c.GossipNodes},
		{"retransmit mult", c.RetransmitMult},
		{"event buffer", c.EventBuffer},
	}
	for _, n := range counts {
		if n.n < 1 {
			return fmt.Errorf("gossip config: %s: must be at least 1, got %d", n.name, n.n)
		}
	}
	if _, err := EncodeMeta(c.Meta); err != nil {
		return fmt.Errorf("gossip config: meta: %w", err)
	}
	return nil
}

// memberlistConfig translates c into memberlist's configuration, with the
// mesh's delegates and a logger that routes into slog.
func (c Config) memberlistConfig(d *delegate, logger *log.Logger) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if len(c.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), c.SecretKey...)
	}
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.IndirectChecks = c.IndirectChecks
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	mc.GossipInterval = c.GossipInterval
	mc.GossipNodes = c.GossipNodes
	mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	mc.RetransmitMult = c.RetransmitMult
	mc.PushPullInterval = c.PushPullInterval
	mc.TCPTimeout = c.TCPTimeout
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	mc.Delegate = d
	mc.Events = d
	mc.Logger = logger
	if c.Transport != nil {
		mc.Transport = c.Transport
	}
	return mc
}
