package containerd

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/runtime"
)

func TestContainerArgv(t *testing.T) {
	ep, cmd := []string{"/entry"}, []string{"serve"}
	tests := []struct {
		name       string
		spec       runtime.ContainerSpec
		entrypoint []string
		cmd        []string
		want       []string
	}{
		{"image defaults", runtime.ContainerSpec{}, ep, cmd, []string{"/entry", "serve"}},
		{"command replaces both", runtime.ContainerSpec{Command: []string{"/bin/x"}}, ep, cmd, []string{"/bin/x"}},
		{"command and args", runtime.ContainerSpec{Command: []string{"/bin/x"}, Args: []string{"a"}}, ep, cmd, []string{"/bin/x", "a"}},
		{"args replace cmd", runtime.ContainerSpec{Args: []string{"sleep"}}, ep, cmd, []string{"/entry", "sleep"}},
		{"nothing", runtime.ContainerSpec{}, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := containerArgv(tt.spec, tt.entrypoint, tt.cmd); !slices.Equal(got, tt.want) {
				t.Fatalf("argv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWorkingDir(t *testing.T) {
	tests := []struct {
		spec, image, want string
		err               bool
	}{
		{"", "", "/", false},
		{"", "/app", "/app", false},
		{"/srv/", "/app", "/srv", false},
		{"data", "", "/data", false},
		{"a/../b", "", "/b", false},
		{"../etc", "", "", true},
	}
	for _, tt := range tests {
		got, err := workingDir(tt.spec, tt.image)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("workingDir(%q, %q) = %q, %v; want %q, error %v", tt.spec, tt.image, got, err, tt.want, tt.err)
		}
	}
}

func TestContainerdID(t *testing.T) {
	ids := []runtime.ContainerID{
		{PodUID: "u", Name: "web", Attempt: 0},
		{PodUID: "u", Name: "web", Attempt: 1},
		{PodUID: "v", Name: "web", Attempt: 0},
		{PodUID: "u", Name: "--odd__name..", Attempt: 12},
		{PodUID: "u", Name: "日本", Attempt: 0},
		{PodUID: "u", Name: strings.Repeat("long-name-", 20), Attempt: 1 << 30},
	}
	seen := map[string]bool{}
	for _, id := range ids {
		cid := containerdID(id)
		if !validIdentifier(cid) {
			t.Errorf("containerdID(%s) = %q: not a containerd identifier", id, cid)
		}
		if seen[cid] {
			t.Errorf("containerdID(%s) = %q twice", id, cid)
		}
		seen[cid] = true
	}
	if got := containerdID(ids[0]); !strings.HasPrefix(got, "web-0-") {
		t.Errorf("containerdID = %q; want it to start with the name and attempt", got)
	}
}

func TestLabelsRoundTrip(t *testing.T) {
	pod := runtime.Pod{UID: "uid", Namespace: "ns", Name: "p"}
	id := runtime.ContainerID{PodUID: "uid", Name: "c", Attempt: 2}
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	labels := attemptLabels(pod, runtime.ContainerSpec{Image: "img"}, id)
	st, exited, ok := statusFromLabels(labels, created)
	if !ok || exited || !st.Running || st.ID != id || st.Pod != pod || !st.StartedAt.Equal(created) {
		t.Fatalf("running = %+v, exited %v, ok %v", st, exited, ok)
	}
	exitStatus(&st, 137, created.Add(time.Second), true)
	for k, v := range exitLabels(st) {
		labels[k] = v
	}
	got, exited, ok := statusFromLabels(labels, created)
	if !ok || !exited || got != st || got.Reason != runtime.ReasonOOMKilled {
		t.Fatalf("exited = %+v (%v, %v); want %+v", got, exited, ok, st)
	}
	if _, _, ok := statusFromLabels(map[string]string{"other": "x"}, created); ok {
		t.Fatal("foreign labels accepted")
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		code         uint32
		oom          bool
		reason, msg  string
		wantExitCode int
	}{
		{0, false, runtime.ReasonCompleted, "", 0},
		{0, true, runtime.ReasonCompleted, "", 0},
		{3, false, runtime.ReasonError, "", 3},
		{137, false, runtime.ReasonError, "killed by signal 9", 137},
		{137, true, runtime.ReasonOOMKilled, "killed for exceeding the memory limit", 137},
	}
	for _, tt := range tests {
		var st runtime.Status
		exitStatus(&st, tt.code, time.Unix(1, 0), tt.oom)
		if st.Running || st.Reason != tt.reason || st.Message != tt.msg || st.ExitCode != tt.wantExitCode {
			t.Errorf("exitStatus(%d, oom %v) = %+v", tt.code, tt.oom, st)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig()
	base.Dir = "/var/lib/shoal/runtime"
	if err := base.Validate(); err != nil {
		t.Fatalf("default config with dir: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no dir", func(c *Config) { c.Dir = "" }, "dir"},
		{"comma", func(c *Config) { c.Dir = "/a,b" }, "comma"},
		{"namespace", func(c *Config) { c.Namespace = "a/b" }, "namespace"},
		{"bridge", func(c *Config) { c.Bridge = "a-very-long-bridge-name" }, "bridge"},
		{"cidr", func(c *Config) { c.PodCIDR = "10.0.0.1/24" }, "host bits"},
		{"v6", func(c *Config) { c.PodCIDR = "fd00::/64" }, "IPv4"},
		{"masq", func(c *Config) { c.IPMasq = "maybe" }, "ip masq"},
		{"log", func(c *Config) { c.MaxLogBytes = -1 }, "max log bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v; want an error about %s", err, tt.want)
			}
		})
	}
}
