// Package agent composes one Shoal agent: the gossip mesh, the Raft node
// with its replica, the gRPC API, the health and metrics endpoint, cluster
// birth (--bootstrap-expect) and the autopilot that keeps the voters
// healthy. Later capabilities (kubelet duties, controllers, DNS, proxy)
// slot in here as further loops over the replica.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/agent/binding"
	"github.com/shoal-dev/shoal/agent/events"
	"github.com/shoal-dev/shoal/agent/informer"
	"github.com/shoal-dev/shoal/agent/kubelet"
	"github.com/shoal-dev/shoal/agent/podcidr"
	"github.com/shoal-dev/shoal/agent/proxy"
	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/services"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/dns"
	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
	"github.com/shoal-dev/shoal/sched"
	"github.com/shoal-dev/shoal/version"
)

// Default ports on the bound IP.
const (
	DefaultGossipPort = 7946
	DefaultRaftPort   = 7947
	DefaultGRPCPort   = 7948
	DefaultHTTPPort   = 7949
)

// Config configures an agent. cmd/shoal fills it from flags and the
// config file; nothing below reads flags or the environment.
type Config struct {
	Name    string
	DataDir string
	// BindAddr is the one IP every listener of this agent binds.
	BindAddr string
	Join     []string
	// BootstrapExpect, when non-zero, makes the agent wait for that many
	// agents to see each other before Raft is born.
	BootstrapExpect int
	// Voters is the number of Raft voters to keep; 0 means 3, or 5 from 7
	// live agents up.
	Voters          int
	DeadServerGrace time.Duration

	GossipPort, RaftPort, GRPCPort, HTTPPort int

	Labels      map[string]string
	CPUMillis   int64
	MemoryBytes int64
	PodCIDR     string
	// ServiceCIDR is where ClusterIPs are allocated.
	ServiceCIDR netip.Prefix
	// ClusterCIDR is where nodes' pod CIDRs are allocated (a /24 each)
	// for nodes without PodCIDR.
	ClusterCIDR netip.Prefix
	// ClusterDomain is the DNS domain of services and pods.
	ClusterDomain string
	// Proxy runs the service proxy: listeners on every ClusterIP, node
	// port and external IP, and a local route for ServiceCIDR.
	Proxy bool
	// DNSPort is the cluster DNS port on BindAddr (UDP and TCP); -1
	// disables the DNS server.
	DNSPort int
	// DNSUpstreams are the resolvers (ip:port) that names outside the
	// cluster domain are forwarded to; empty reads /etc/resolv.conf.
	DNSUpstreams []string
	// EncryptKey encrypts gossip when set (16, 24 or 32 bytes).
	EncryptKey []byte

	// Raft tuning; zero takes consensus.DefaultConfig.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration

	// RaftTransport, when set, replaces Raft's TCP transport (in-process
	// clusters use raft.InmemTransport); the agent's Raft address is then
	// the transport's LocalAddr and RaftPort is not bound.
	RaftTransport raft.Transport
	// RaftInMemory keeps the Raft log and snapshots in memory instead of
	// under DataDir (in-process clusters).
	RaftInMemory bool
	// GossipTransport, when set, replaces memberlist's UDP/TCP transport
	// (in-process clusters use memberlist.MockNetwork); GossipPort is then
	// not bound. The gRPC and HTTP listeners stay on BindAddr.
	GossipTransport memberlist.NodeAwareTransport
	// GossipTiming, when set, adjusts the failure-detection timing of the
	// gossip configuration before the mesh starts (in-process clusters of
	// many agents sharing a few cores need slower probes).
	GossipTiming func(*gossip.Config)

	// EnableDebug serves the Go profiler on the HTTP port.
	EnableDebug bool

	// Runtime names the runtime driver: "process" (the default),
	// "containerd" or "sim".
	Runtime string
	// ContainerdAddress and ContainerdNamespace are, for the containerd
	// runtime, the daemon's socket and this agent's namespace in it; empty
	// takes the driver's defaults.
	ContainerdAddress   string
	ContainerdNamespace string
	// ContainerdBridge is the Linux bridge pods attach to (empty: the
	// driver's default, shoal0); agents sharing a host need one each.
	ContainerdBridge string
	// SchedulerPolicy chooses how pods are spread over nodes.
	SchedulerPolicy sched.Policy
	// PodEvictionTimeout is how long a node may be dead before its pods
	// are failed so their controllers replace them.
	PodEvictionTimeout time.Duration
	// RestartBackoff is the first delay before a crashed container is
	// restarted (doubling up to 5 minutes).
	RestartBackoff time.Duration
	// StatsInterval is how often the kubelet samples its pods' CPU and
	// memory use; HPASyncPeriod how often the leader's autoscaler syncs
	// each HorizontalPodAutoscaler. Zero takes 10 s and 15 s.
	StatsInterval, HPASyncPeriod time.Duration

	Logger    *slog.Logger
	LogOutput io.Writer // raw log lines of raft; nil discards
}

// DefaultConfig returns an agent config with the default ports.
func DefaultConfig() Config {
	return Config{
		BindAddr:           "127.0.0.1",
		GossipPort:         DefaultGossipPort,
		RaftPort:           DefaultRaftPort,
		GRPCPort:           DefaultGRPCPort,
		HTTPPort:           DefaultHTTPPort,
		DeadServerGrace:    30 * time.Second,
		Runtime:            "process",
		PodEvictionTimeout: 10 * time.Second,
		RestartBackoff:     10 * time.Second,
		StatsInterval:      defaultStatsInterval,
		HPASyncPeriod:      defaultHPASyncPeriod,
		ClusterDomain:      dns.DefaultDomain,
		ServiceCIDR:        services.DefaultCIDR,
		ClusterCIDR:        podcidr.DefaultClusterCIDR,
		DNSPort:            DefaultDNSPort,
		Proxy:              true,
	}
}

// storeIndexes are the replicated store's secondary indexes.
func storeIndexes() map[string]state.Index {
	out := binding.Indexes()
	maps.Copy(out, services.Indexes())
	maps.Copy(out, podcidr.Indexes())
	return out
}

// admit runs every admission check of the state machine.
func admit(v state.View, cur, next *pb.Object) error {
	if err := services.Admit(v, cur, next); err != nil {
		return err
	}
	return podcidr.Admit(v, cur, next)
}

// Validate reports the first problem with the config.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("agent: --name is required")
	case c.DataDir == "":
		return errors.New("agent: --data-dir is required")
	case net.ParseIP(c.BindAddr) == nil:
		return fmt.Errorf("agent: --bind %q is not an IP address", c.BindAddr)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("agent: --bootstrap-expect %d is negative", c.BootstrapExpect)
	case c.Voters < 0 || (c.Voters > 0 && c.Voters%2 == 0):
		return fmt.Errorf("agent: --voters %d must be an odd positive number (or 0 for automatic)", c.Voters)
	case c.DeadServerGrace < 0:
		return errors.New("agent: --dead-server-grace is negative")
	case c.PodEvictionTimeout < 0:
		return errors.New("agent: --pod-eviction-timeout is negative")
	case c.RestartBackoff < 0:
		return errors.New("agent: --restart-backoff is negative")
	case c.StatsInterval < 0 || c.HPASyncPeriod < 0:
		return errors.New("agent: --stats-interval and --hpa-sync-period must not be negative")
	case c.Runtime != "process" && c.Runtime != "containerd" && c.Runtime != "sim":
		return fmt.Errorf("agent: --runtime %q: want process, containerd or sim", c.Runtime)
	}
	for name, p := range map[string]int{"gossip": c.GossipPort, "raft": c.RaftPort, "grpc": c.GRPCPort, "http": c.HTTPPort} {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("agent: %s port %d out of range", name, p)
		}
	}
	if c.DNSPort < -1 || c.DNSPort > 65535 {
		return fmt.Errorf("agent: --dns-port %d out of range (-1 turns cluster DNS off)", c.DNSPort)
	}
	for _, u := range c.DNSUpstreams {
		if _, err := netip.ParseAddrPort(u); err != nil {
			return fmt.Errorf("agent: --dns-upstream %q: want ip:port", u)
		}
	}
	if strings.ContainsAny(c.Name, "/ \t\n") {
		return fmt.Errorf("agent: --name %q must not contain slashes or spaces", c.Name)
	}
	return nil
}

func (c Config) addr(port int) string { return net.JoinHostPort(c.BindAddr, strconv.Itoa(port)) }

// raftAddr is the Raft address this agent advertises.
func (c Config) raftAddr() string {
	if c.RaftTransport != nil {
		return string(c.RaftTransport.LocalAddr())
	}
	return c.addr(c.RaftPort)
}

// Agent is one running Shoal agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	nodeID string
	reg    *prometheus.Registry

	mesh    *gossip.Mesh
	node    *consensus.Node
	driver  runtime.Driver
	events  *events.Recorder
	pods    *informer.Informer // decoded pods and nodes of the local replica
	dns     *dns.Server        // nil when cluster DNS is off or could not listen
	proxy   *proxy.Proxy       // nil when the service proxy is off
	claims  claimCache         // owned by the schedule loop
	lastGC  time.Time          // when the leader last collected garbage
	kubelet *kubelet.Kubelet
	started time.Time
	api     *apiserver.Server
	grpc    *grpc.Server
	http    *http.Server

	metaMu sync.Mutex
	meta   *pb.NodeMeta

	stop chan struct{}
	wg   sync.WaitGroup
}

// New opens the data dir and starts every listener. Run keeps it going.
func New(cfg Config) (a *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	a = &Agent{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), reg: prometheus.NewRegistry(), stop: make(chan struct{}), started: time.Now()}
	// "return nil, err" clears a before deferred calls run: close what
	// was opened through a copy.
	opened := a
	defer func() {
		if err != nil {
			opened.close()
		}
	}()
	if a.nodeID, err = loadNodeID(cfg.DataDir); err != nil {
		return nil, err
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	a.node, err = consensus.New(consensus.Config{
		ID:                cfg.Name,
		Addr:              cfg.raftAddr(),
		DataDir:           cfg.DataDir,
		InMemory:          cfg.RaftInMemory,
		Transport:         cfg.RaftTransport,
		SnapshotThreshold: cfg.SnapshotThreshold,
		TrailingLogs:      cfg.TrailingLogs,
		SnapshotInterval:  cfg.SnapshotInterval,
		Store:             state.Options{Indexes: storeIndexes(), Binder: binding.New().Bind, Admit: admit},
		Logger:            a.log.With("component", "raft"),
		LogOutput:         cfg.LogOutput,
		Registerer:        a.reg,
	})
	if err != nil {
		return nil, err
	}

	a.meta = &pb.NodeMeta{
		NodeId:           a.nodeID,
		GrpcAddress:      cfg.addr(cfg.GRPCPort),
		RaftAddress:      cfg.raftAddr(),
		HttpAddress:      cfg.addr(cfg.HTTPPort),
		Version:          version.Version,
		CpuMillis:        cfg.CPUMillis,
		MemoryBytes:      cfg.MemoryBytes,
		Labels:           cfg.Labels,
		BootstrapExpect:  int32(cfg.BootstrapExpect),
		RaftBootstrapped: a.node.HasState(),
		PodCidr:          cfg.PodCIDR,
	}
	gcfg := gossip.DefaultConfig()
	gcfg.Name = cfg.Name
	gcfg.BindAddr = cfg.BindAddr
	gcfg.BindPort = cfg.GossipPort
	gcfg.Meta = a.meta
	gcfg.SecretKey = cfg.EncryptKey
	gcfg.Transport = cfg.GossipTransport
	if cfg.GossipTiming != nil {
		cfg.GossipTiming(&gcfg)
	}
	gcfg.Logger = a.log.With("component", "gossip")
	if a.mesh, err = gossip.New(gcfg); err != nil {
		return nil, err
	}
	a.registerGossipMetrics()

	if a.driver, err = newDriver(cfg, a.log, a.imagePeers()); err != nil {
		return nil, err
	}
	a.api, err = apiserver.New(apiserver.Config{Node: cfg.Name, Raft: a.node, Members: a.mesh, LocalIP: cfg.BindAddr, ServiceCIDR: cfg.ServiceCIDR, ClusterCIDR: cfg.ClusterCIDR,
		Logger: a.log.With("component", "api")})
	if err != nil {
		return nil, err
	}
	a.events = events.New(a.api, "shoal", cfg.Name, a.log.With("component", "events"))
	kcfg := kubelet.DefaultConfig()
	kcfg.Events = a.events
	a.pods = informer.New(a.node.Store(), a.log.With("component", "informer"))
	kcfg.Node, kcfg.NodeIP, kcfg.Driver, kcfg.Store, kcfg.Pods, kcfg.Writer = cfg.Name, cfg.BindAddr, a.driver, a.node.Store(), a.pods, a.api
	kcfg.Logger = a.log.With("component", "kubelet")
	kcfg.RestartBackoff = cfg.RestartBackoff
	kcfg.StatsInterval = cfg.StatsInterval // 0: the kubelet's default
	kcfg.Services, kcfg.ClusterDomain = kubelet.StoreServices(a.node.Store()), cfg.ClusterDomain
	kcfg.Synced = a.api.CatchUp
	if cfg.DNSPort >= 0 { // off (-1): pods get the node's resolv.conf
		kcfg.DNSServer, _ = netip.ParseAddr(cfg.BindAddr)
		if cfg.DNSPort != DefaultDNSPort {
			a.log.Warn("cluster DNS is not on port 53 and a resolv.conf cannot name a port: ClusterFirst pods will not reach it", "dns_port", cfg.DNSPort)
		}
	}
	a.kubelet = kubelet.New(kcfg)
	a.api.SetPodIO(a.kubelet)
	a.api.SetUsage(a.kubelet, cfg.CPUMillis, cfg.MemoryBytes)
	a.reg.MustRegister(a.kubelet.Collector())
	if l, ok := a.driver.(apiserver.ImageStore); ok {
		a.api.SetImages(l)
	}
	lis, err := net.Listen("tcp", cfg.addr(cfg.GRPCPort))
	if err != nil {
		return nil, fmt.Errorf("grpc listener: %w", err)
	}
	a.grpc = grpc.NewServer()
	a.api.Register(a.grpc)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.grpc.Serve(lis); err != nil {
			a.log.Error("grpc server stopped", "err", err)
		}
	}()

	hl, err := net.Listen("tcp", cfg.addr(cfg.HTTPPort))
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	a.http = &http.Server{Handler: a.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.http.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()

	a.startDNS()
	a.startProxy()

	a.log.Info("agent started", "bind", cfg.BindAddr, "grpc", a.meta.GrpcAddress, "raft", a.meta.RaftAddress,
		"version", version.Version, "has_raft_state", a.meta.RaftBootstrapped)
	return a, nil
}

// Run joins the cluster and runs the agent's loops until ctx ends, then
// shuts the agent down.
func (a *Agent) Run(ctx context.Context) error {
	loops := []func(context.Context){a.joinLoop, a.bootstrapLoop, a.autopilotLoop, a.leaderLoop,
		a.registerNodeLoop, a.scheduleLoop, a.controllerLoop, a.kubelet.Run, a.servicesLoop,
		a.podCIDRLoop, a.podRoutesLoop, a.hpaLoop,
		func(ctx context.Context) { a.events.Run(ctx, 500*time.Millisecond) }}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	<-ctx.Done()
	cancel()
	wg.Wait()
	a.Shutdown()
	return nil
}

// Shutdown leaves the gossip mesh and stops every listener. The Raft
// configuration keeps this node: a restart from the same data dir rejoins.
func (a *Agent) Shutdown() {
	a.log.Info("agent stopping")
	if a.mesh != nil {
		if err := a.mesh.Leave(2 * time.Second); err != nil {
			a.log.Warn("gossip leave", "err", err)
		}
	}
	a.close()
}

func (a *Agent) close() {
	select {
	case <-a.stop:
		return
	default:
		close(a.stop)
	}
	if a.grpc != nil {
		stopped := make(chan struct{})
		go func() { a.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(2 * time.Second):
			a.grpc.Stop()
		}
	}
	if a.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = a.http.Shutdown(ctx)
		cancel()
	}
	if a.api != nil {
		a.api.Close()
	}
	if a.dns != nil {
		_ = a.dns.Close()
	}
	if a.proxy != nil {
		_ = a.proxy.Close()
	}
	if a.mesh != nil {
		_ = a.mesh.Shutdown()
	}
	if a.driver != nil {
		_ = a.driver.Close()
	}
	if a.node != nil {
		if err := a.node.Shutdown(); err != nil {
			a.log.Warn("raft shutdown", "err", err)
		}
	}
	a.wg.Wait()
}

// Node is the agent's Raft node (tests, in-process tools).
func (a *Agent) Node() *consensus.Node { return a.node }

// GRPCAddr is the address the agent's gRPC API listens on.
func (a *Agent) GRPCAddr() string {
	a.metaMu.Lock()
	defer a.metaMu.Unlock()
	return a.meta.GetGrpcAddress()
}

// Mesh is the agent's gossip mesh.
func (a *Agent) Mesh() *gossip.Mesh { return a.mesh }

// loadNodeID reads the node's stable id from the data dir, creating it on
// first start.
func loadNodeID(dir string) (string, error) {
	p := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if _, perr := uuid.Parse(id); perr != nil {
			return "", fmt.Errorf("node id in %s: %w", p, perr)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := uuid.NewString()
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}
