// Package e2e drives real shoal agent processes on 127.0.x.x through the
// CLI and gRPC, as a user would.
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
)

func TestMain(m *testing.M) {
	if _, err := harness.Binary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts agent processes; skipped with -short")
	}
}

// configMap writes a manifest for one ConfigMap and returns its path.
func configMap(t *testing.T, name, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".yaml")
	doc := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  labels:\n    app: e2e\ndata:\n  v: %q\n", name, value)
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type k8sObject struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
		UID             string `json:"uid"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
}

type k8sList struct {
	Kind  string      `json:"kind"`
	Items []k8sObject `json:"items"`
}

func listConfigMaps(t *testing.T, c *harness.Cluster, a *harness.Agent, extra ...string) (k8sList, error) {
	t.Helper()
	r := c.CLI(a, nil, append([]string{"get", "configmaps", "-o", "json"}, extra...)...)
	var l k8sList
	if r.Code != 0 {
		return l, fmt.Errorf("get configmaps on %s: %s", a.Name, strings.TrimSpace(r.Stderr))
	}
	return l, json.Unmarshal([]byte(r.Stdout), &l)
}

// TestClusterLifecycle walks one five-agent cluster through birth,
// read-your-writes, leader loss, a full restart and a late joiner
// (acceptance 1, 2, 4, 5 and the autopilot part of 3).
func TestClusterLifecycle(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 5, harness.Options{BootstrapExpect: 3, ExtraArgs: []string{
		"--snapshot-threshold", "64", "--trailing-logs", "16", "--snapshot-interval", "1s", "--dead-server-grace", "5s",
	}})
	c.StartAll()

	t.Run("five agents form one cluster", func(t *testing.T) {
		c.WaitFormed(60*time.Second, 3, 2)
		for _, a := range c.Agents {
			v, err := c.Raft(a)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Servers) != 5 {
				t.Fatalf("%s: %d servers in the raft configuration, want 5: %+v", a.Name, len(v.Servers), v.Servers)
			}
		}
	})

	written := map[string]string{} // name -> value of every acknowledged write
	t.Run("apply on any agent, get on every other", func(t *testing.T) {
		for i, a := range c.Agents {
			name, value := fmt.Sprintf("ryw-%d", i), fmt.Sprintf("from-%s", a.Name)
			out := c.MustCLI(a, "apply", "-f", configMap(t, name, value), "-o", "json")
			var applied k8sObject
			if err := json.Unmarshal([]byte(out), &applied); err != nil {
				t.Fatalf("apply -o json: %v: %s", err, out)
			}
			rev, err := strconv.ParseUint(applied.Metadata.ResourceVersion, 10, 64)
			if err != nil || rev == 0 {
				t.Fatalf("apply returned resourceVersion %q", applied.Metadata.ResourceVersion)
			}
			written[name] = value
			for _, b := range c.Agents {
				if b == a {
					continue
				}
				// Read-your-writes by revision from the local replica, and
				// the default (linearizable) read.
				for _, mode := range [][]string{{"--consistency", "local", "--min-revision", fmt.Sprint(rev)}, nil} {
					args := append([]string{"get", "configmap", name, "-o", "json"}, mode...)
					out := c.MustCLI(b, args...)
					var got k8sObject
					if err := json.Unmarshal([]byte(out), &got); err != nil {
						t.Fatal(err)
					}
					if got.Data["v"] != value || got.Metadata.UID != applied.Metadata.UID {
						t.Fatalf("get %s on %s %v: %+v, want v=%s uid=%s", name, b.Name, mode, got, value, applied.Metadata.UID)
					}
				}
			}
		}
	})

	t.Run("leader killed: new leader, writes resume, voters restored", func(t *testing.T) {
		leader, err := c.Leader()
		if err != nil {
			t.Fatal(err)
		}
		c.Kill(leader)
		var survivor *harness.Agent
		for _, a := range c.Agents {
			if a.Running() {
				survivor = a
				break
			}
		}
		p := configMap(t, "after-kill", "1")
		waitfor.Cond(t, 30*time.Second, "a write through a survivor after the leader kill", func() (bool, string) {
			r := c.CLI(survivor, nil, "apply", "-f", p, "--timeout", "3s")
			return r.Code == 0, r.Stderr
		})
		written["after-kill"] = "1"
		// The autopilot promotes a non-voter: three live voters again.
		waitfor.Cond(t, 30*time.Second, "3 live voters after the kill", func() (bool, string) {
			v, err := c.Raft(survivor)
			if err != nil {
				return false, err.Error()
			}
			lv, _ := v.LiveVoters()
			return v.Leader != "" && v.Leader != leader.Name && lv == 3, fmt.Sprintf("%+v", v)
		})
		for name, value := range written {
			out := c.MustCLI(survivor, "get", "configmap", name, "-o", "json")
			var got k8sObject
			if err := json.Unmarshal([]byte(out), &got); err != nil || got.Data["v"] != value {
				t.Fatalf("acknowledged write %s=%s lost after the kill: %s", name, value, out)
			}
		}
		c.Start(leader)
		c.WaitFormed(60*time.Second, 3, 2)
	})

	t.Run("stop all and start again from the data dirs", func(t *testing.T) {
		// Enough writes to compact the log (snapshot threshold 64).
		for i := 0; i < 80; i++ {
			name := fmt.Sprintf("bulk-%03d", i)
			c.MustCLI(c.Agents[i%len(c.Agents)], "apply", "-f", configMap(t, name, "x"))
			written[name] = "x"
		}
		for _, a := range c.Agents {
			c.Stop(a)
		}
		c.StartAll()
		c.WaitFormed(90*time.Second, 3, 2)
		for _, a := range c.Agents {
			l, err := listConfigMaps(t, c, a)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != len(written) {
				t.Fatalf("%s holds %d configmaps after the restart, want %d", a.Name, len(l.Items), len(written))
			}
			for _, it := range l.Items {
				if written[it.Metadata.Name] != it.Data["v"] {
					t.Fatalf("%s: %s=%q, want %q", a.Name, it.Metadata.Name, it.Data["v"], written[it.Metadata.Name])
				}
			}
		}
	})

	t.Run("a sixth agent receives the full state by snapshot", func(t *testing.T) {
		leader, err := c.Leader()
		if err != nil {
			t.Fatal(err)
		}
		// More writes than the trailing logs so the leader has compacted.
		for i := 0; i < 70; i++ {
			name := fmt.Sprintf("late-%03d", i)
			c.MustCLI(leader, "apply", "-f", configMap(t, name, "y"))
			written[name] = "y"
		}
		sixth := c.Add()
		c.Start(sixth)
		c.WaitFormed(60*time.Second, 3, 3)
		waitfor.Cond(t, 30*time.Second, "the sixth agent's replica to hold every object", func() (bool, string) {
			l, err := listConfigMaps(t, c, sixth, "--consistency", "local")
			if err != nil {
				return false, err.Error()
			}
			return len(l.Items) == len(written), fmt.Sprintf("%d of %d configmaps", len(l.Items), len(written))
		})
		restores, err := harness.Metric(sixth, "shoal_raft_snapshot_restores_total")
		if err != nil {
			t.Fatal(err)
		}
		if restores < 1 {
			t.Fatalf("the sixth agent caught up without a snapshot (restores=%v)", restores)
		}
	})

	t.Run("a voter dead past the grace period is replaced and removed", func(t *testing.T) {
		leader, err := c.Leader()
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Raft(leader)
		if err != nil {
			t.Fatal(err)
		}
		var victim *harness.Agent
		for _, s := range v.Servers {
			if s.Suffrage == "voter" && s.ID != leader.Name {
				for _, a := range c.Agents {
					if a.Name == s.ID {
						victim = a
					}
				}
				break
			}
		}
		c.Kill(victim)
		waitfor.Cond(t, 30*time.Second, victim.Name+" removed and 3 live voters among the 5 left", func() (bool, string) {
			v, err := c.Raft(leader)
			if err != nil {
				return false, err.Error()
			}
			lv, ln := v.LiveVoters()
			for _, s := range v.Servers {
				if s.ID == victim.Name {
					return false, fmt.Sprintf("%s still in the configuration: %+v", victim.Name, v.Servers)
				}
			}
			return len(v.Servers) == 5 && lv == 3 && ln == 2, fmt.Sprintf("%+v", v.Servers)
		})
	})
}
