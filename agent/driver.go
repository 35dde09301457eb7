package agent

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/containerd"
	"github.com/shoal-dev/shoal/agent/runtime/process"
	"github.com/shoal-dev/shoal/agent/runtime/sim"
)

// newDriver opens the runtime driver named by the config; its state lives
// under DATA_DIR/runtime (DATA_DIR/runtime/containerd for containerd).
// The containerd driver fetches images missing on this node from peers.
func newDriver(cfg Config, log *slog.Logger, peers containerd.Peers) (runtime.Driver, error) {
	switch cfg.Runtime {
	case "process", "":
		d, err := process.New(process.Config{Dir: filepath.Join(cfg.DataDir, "runtime"), Logger: log.With("component", "runtime")})
		if err != nil {
			return nil, fmt.Errorf("process runtime: %w", err)
		}
		return d, nil
	case "containerd":
		cc := containerd.DefaultConfig()
		cc.Dir = filepath.Join(cfg.DataDir, "runtime", "containerd")
		if cfg.ContainerdAddress != "" {
			cc.Address = cfg.ContainerdAddress
		}
		if cfg.ContainerdNamespace != "" {
			cc.Namespace = cfg.ContainerdNamespace
		}
		if cfg.ContainerdBridge != "" {
			cc.Bridge = cfg.ContainerdBridge
		}
		// Empty: the cluster allocates one (podCIDRLoop hands it over).
		cc.PodCIDR = cfg.PodCIDR
		cc.Logger = log.With("component", "runtime")
		cc.Peers = peers
		d, err := containerd.New(cc)
		if err != nil {
			return nil, err // says "containerd runtime: ..."
		}
		return d, nil
	case "sim":
		return sim.New(), nil
	}
	return nil, fmt.Errorf("unknown runtime %q", cfg.Runtime)
}
