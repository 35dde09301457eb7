package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/agent"
	"github.com/shoal-dev/shoal/agent/podcidr"
	"github.com/shoal-dev/shoal/agent/runtime/containerd"
	"github.com/shoal-dev/shoal/sched"
)

type agentFlags struct {
	cfg         agent.Config
	config      string
	join        []string
	labels      []string
	cpu         string
	memory      string
	encrypt     string
	logLevel    string
	logFormat   string
	policy      string
	svcCIDR     string
	clusterCIDR string
}

func newAgentCmd(g *globals) *cobra.Command {
	f := &agentFlags{cfg: agent.DefaultConfig()}
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a Shoal agent (one per machine)",
		Long: `Run a Shoal agent. Every machine runs the same agent: it joins the gossip mesh,
holds a replica of the Raft log of desired state, and serves the API.

Every flag may also be set in a YAML config file (--config) with the flag's
name as key; flags on the command line win.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfigFile(cmd.Flags(), f.config); err != nil {
				return err
			}
			cfg, err := f.build()
			if err != nil {
				return err
			}
			return runAgent(cmd.Context(), cfg, f.logLevel, f.logFormat, g)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML file of flag settings (flag name: value)")
	fl.StringVar(&f.cfg.Name, "name", host, "node name, unique in the cluster")
	fl.StringVar(&f.cfg.DataDir, "data-dir", "/var/lib/shoal", "directory for the Raft log, snapshots and node id")
	fl.StringVar(&f.cfg.BindAddr, "bind", f.cfg.BindAddr, "the one IP address every listener of this agent binds")
	fl.StringSliceVar(&f.join, "join", nil, "addresses of agents to join (ip or ip:port of their gossip port), comma-separated")
	fl.IntVar(&f.cfg.BootstrapExpect, "bootstrap-expect", 0, "wait for this many agents to see each other, then start the Raft group")
	fl.IntVar(&f.cfg.Voters, "voters", 0, "Raft voters to keep (odd); 0 means 3, or 5 from 7 agents up")
	fl.DurationVar(&f.cfg.DeadServerGrace, "dead-server-grace", f.cfg.DeadServerGrace, "how long a dead agent stays in the Raft configuration before the autopilot removes it")
	fl.StringSliceVar(&f.labels, "labels", nil, "node labels, k=v,...")
	fl.StringVar(&f.cpu, "cpu", "", "CPU capacity to advertise (e.g. 2 or 1500m); default: the machine's")
	fl.StringVar(&f.memory, "memory", "", "memory capacity to advertise (e.g. 4Gi); default: the machine's")
	fl.StringVar(&f.cfg.PodCIDR, "pod-cidr", "", "this node's pod CIDR; default: a /24 of --cluster-cidr allocated by the cluster")
	fl.StringVar(&f.clusterCIDR, "cluster-cidr", f.cfg.ClusterCIDR.String(), "range nodes' pod CIDRs are allocated from, a /24 each; every agent should give the same")
	fl.StringVar(&f.svcCIDR, "service-cidr", f.cfg.ServiceCIDR.String(), "range ClusterIPs are allocated from; every agent should give the same")
	fl.BoolVar(&f.cfg.Proxy, "proxy", f.cfg.Proxy, "run the service proxy (ClusterIP, NodePort and external IP listeners; adds a local route for --service-cidr)")
	fl.StringVar(&f.cfg.ClusterDomain, "cluster-domain", f.cfg.ClusterDomain, "DNS domain of services and pods")
	fl.IntVar(&f.cfg.DNSPort, "dns-port", f.cfg.DNSPort, "cluster DNS port on the bind address (UDP and TCP); -1 turns cluster DNS off")
	fl.StringSliceVar(&f.cfg.DNSUpstreams, "dns-upstream", nil, "resolvers (ip:port) for names outside the cluster domain, comma-separated; default: /etc/resolv.conf's")
	fl.StringVar(&f.encrypt, "encrypt", "", "gossip encryption key, base64 of 16, 24 or 32 bytes")
	fl.IntVar(&f.cfg.GossipPort, "gossip-port", f.cfg.GossipPort, "gossip port (TCP and UDP)")
	fl.IntVar(&f.cfg.RaftPort, "raft-port", f.cfg.RaftPort, "Raft port")
	fl.IntVar(&f.cfg.GRPCPort, "grpc-port", f.cfg.GRPCPort, "gRPC API port")
	fl.IntVar(&f.cfg.HTTPPort, "http-port", f.cfg.HTTPPort, "health and metrics HTTP port")
	fl.Uint64Var(&f.cfg.SnapshotThreshold, "snapshot-threshold", 0, "log entries between Raft snapshots (0: default 8192)")
	fl.Uint64Var(&f.cfg.TrailingLogs, "trailing-logs", 0, "log entries kept after a snapshot (0: default 10240)")
	fl.DurationVar(&f.cfg.SnapshotInterval, "snapshot-interval", 0, "how often to check whether a snapshot is due (0: default 30s)")
	fl.StringVar(&f.cfg.Runtime, "runtime", f.cfg.Runtime, "runtime driver: process (containers as processes of the agent), containerd (images, cgroup limits, a network namespace per pod) or sim (runs nothing; for scale tests)")
	fl.StringVar(&f.cfg.ContainerdAddress, "containerd-socket", containerd.DefaultAddress, "containerd's socket, for --runtime containerd")
	fl.StringVar(&f.cfg.ContainerdAddress, "containerd-address", containerd.DefaultAddress, "old name of --containerd-socket")
	_ = fl.MarkHidden("containerd-address")
	fl.StringVar(&f.cfg.ContainerdNamespace, "containerd-namespace", containerd.DefaultNamespace, "containerd namespace of this agent's containers and images (one per agent sharing a containerd), for --runtime containerd")
	fl.StringVar(&f.cfg.ContainerdBridge, "containerd-bridge", containerd.DefaultBridge, "Linux bridge the pods of --runtime containerd attach to (one per agent sharing a host)")
	fl.StringVar(&f.policy, "scheduler-policy", "spread", "spread (least allocated) or binpack (most allocated)")
	fl.DurationVar(&f.cfg.PodEvictionTimeout, "pod-eviction-timeout", f.cfg.PodEvictionTimeout, "how long a node may be dead before its pods are failed and replaced elsewhere")
	fl.DurationVar(&f.cfg.RestartBackoff, "restart-backoff", f.cfg.RestartBackoff, "first delay before restarting a crashed container (doubles up to 5m)")
	fl.DurationVar(&f.cfg.StatsInterval, "stats-interval", f.cfg.StatsInterval, "how often the CPU and memory use of this node's pods is sampled (top, autoscaling)")
	fl.DurationVar(&f.cfg.HPASyncPeriod, "hpa-sync-period", f.cfg.HPASyncPeriod, "how often the leader's autoscaler syncs each HorizontalPodAutoscaler")
	fl.BoolVar(&f.cfg.EnableDebug, "enable-debug", false, "serve the Go profiler under /debug/pprof/ on the HTTP port")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return cmd
}

func (f *agentFlags) build() (agent.Config, error) {
	cfg := f.cfg
	for _, j := range f.join {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Join = append(cfg.Join, j)
		}
	}
	if len(f.labels) > 0 {
		cfg.Labels = map[string]string{}
		for _, kv := range f.labels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return cfg, fmt.Errorf("--labels: %q is not key=value", kv)
			}
			cfg.Labels[k] = v
		}
	}
	cpu, mem := int64(runtime.NumCPU())*1000, memTotal()
	if f.cpu != "" {
		q, err := resource.ParseQuantity(f.cpu)
		if err != nil || q.Sign() <= 0 {
			return cfg, fmt.Errorf("--cpu %q: not a positive CPU quantity", f.cpu)
		}
		cpu = q.MilliValue()
	}
	if f.svcCIDR != "" {
		p, err := netip.ParsePrefix(f.svcCIDR)
		if err != nil {
			return cfg, fmt.Errorf("--service-cidr %q: not a CIDR such as 10.96.0.0/12", f.svcCIDR)
		}
		cfg.ServiceCIDR = p.Masked()
	}
	if f.clusterCIDR != "" {
		p, err := netip.ParsePrefix(f.clusterCIDR)
		if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
			return cfg, fmt.Errorf("--cluster-cidr %q: not an IPv4 CIDR of at least a /24, such as 10.244.0.0/16", f.clusterCIDR)
		}
		cfg.ClusterCIDR = p.Masked()
	}
	if f.cfg.PodCIDR != "" {
		if _, err := podcidr.Parse(f.cfg.PodCIDR); err != nil {
			return cfg, fmt.Errorf("--pod-cidr: %v", err)
		}
	}
	if f.memory != "" {
		q, err := resource.ParseQuantity(f.memory)
		if err != nil || q.Sign() <= 0 {
			return cfg, fmt.Errorf("--memory %q: not a positive memory quantity", f.memory)
		}
		mem = q.Value()
	}
	cfg.CPUMillis, cfg.MemoryBytes = cpu, mem
	switch f.policy {
	case "spread", "":
		cfg.SchedulerPolicy = sched.PolicySpread
	case "binpack":
		cfg.SchedulerPolicy = sched.PolicyBinpack
	default:
		return cfg, fmt.Errorf("--scheduler-policy %q: want spread or binpack", f.policy)
	}
	if f.encrypt != "" {
		key, err := base64.StdEncoding.DecodeString(f.encrypt)
		if err != nil {
			return cfg, fmt.Errorf("--encrypt: not base64: %w", err)
		}
		if n := len(key); n != 16 && n != 24 && n != 32 {
			return cfg, fmt.Errorf("--encrypt: key is %d bytes, want 16, 24 or 32", n)
		}
		cfg.EncryptKey = key
	}
	return cfg, cfg.Validate()
}

// memTotal reads the machine's memory from /proc/meminfo (0 if unknown).
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// applyConfigFile sets every flag named in the YAML file that the command
// line did not set.
func applyConfigFile(fl *pflag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var settings map[string]any
	if err := yaml.UnmarshalStrict(b, &settings); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		flag := fl.Lookup(k)
		if flag == nil || k == "config" {
			return fmt.Errorf("--config %s: %s: unknown setting", path, k)
		}
		if flag.Changed {
			continue
		}
		var val string
		switch v := settings[k].(type) {
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			val = strings.Join(parts, ",")
		case map[string]any:
			parts := make([]string, 0, len(v))
			for mk, mv := range v {
				parts = append(parts, mk+"="+fmt.Sprint(mv))
			}
			sort.Strings(parts)
			val = strings.Join(parts, ",")
		case float64:
			val = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			val = fmt.Sprint(v)
		}
		if err := fl.Set(k, val); err != nil {
			return fmt.Errorf("--config %s: %s: %w", path, k, err)
		}
	}
	return nil
}

func runAgent(ctx context.Context, cfg agent.Config, level, format string, g *globals) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(g.stderr, opts)
	case "json":
		h = slog.NewJSONHandler(g.stderr, opts)
	default:
		return fmt.Errorf("--log-format %q: want text or json", format)
	}
	cfg.Logger = slog.New(h)
	cfg.LogOutput = g.stderr
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Run(ctx)
}
