package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/gossip"
)

// peersFile keeps the gossip addresses of the last members seen alive, so a
// restarted agent can rejoin even when its --join targets are down.
const peersFile = "gossip-peers"

func loadPeers(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, peersFile))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// savePeers writes the alive members' addresses when they changed since
// last, and returns what it wrote.
func (a *Agent) savePeers(alive []gossip.Member, last []string) []string {
	self := a.mesh.Local().Name
	var addrs []string
	for _, m := range alive {
		if m.Name != self {
			addrs = append(addrs, m.Address())
		}
	}
	slices.Sort(addrs)
	if slices.Equal(addrs, last) {
		return last
	}
	tmp := filepath.Join(a.cfg.DataDir, peersFile+".tmp")
	if err := os.WriteFile(tmp, []byte(strings.Join(addrs, "\n")+"\n"), 0o600); err != nil {
		a.log.Warn("save gossip peers", "err", err)
		return last
	}
	if err := os.Rename(tmp, filepath.Join(a.cfg.DataDir, peersFile)); err != nil {
		a.log.Warn("save gossip peers", "err", err)
		return last
	}
	return addrs
}
