package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// memberlist's goroutines exit shortly after Shutdown (an open stream
		// within TCPTimeout), so give them a few seconds before calling it a
		// leak. goleak.Find itself backs off between checks.
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
				code = 1
				break
			}
		}
	}
	os.Exit(code)
}

// testWriter sends log lines to t until the test's cleanup runs; memberlist
// goroutines that log after that are silenced instead of panicking testing.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

// testLogger logs at Info (SHOAL_TEST_LOG=debug for everything).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelInfo
	if os.Getenv("SHOAL_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func testMeta(name string) *shoalpb.NodeMeta {
	return &shoalpb.NodeMeta{
		NodeId:      name,
		GrpcAddress: "127.0.0.1:7948",
		Version:     "test",
		CpuMillis:   2000,
		Labels:      map[string]string{"node": name},
	}
}

// fastConfig is a loopback config with timing faster than DefaultConfig,
// still slow enough not to flap under -race on two shared cores.
func fastConfig(t testing.TB, name string) Config {
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Meta = testMeta(name)
	cfg.Logger = testLogger(t)
	cfg.ProbeInterval = 200 * time.Millisecond
	cfg.ProbeTimeout = 100 * time.Millisecond
	cfg.SuspicionMult = 3
	cfg.SuspicionMaxTimeoutMult = 2
	cfg.GossipInterval = 20 * time.Millisecond
	cfg.PushPullInterval = 2 * time.Second
	cfg.GossipToTheDeadTime = 5 * time.Second
	cfg.TCPTimeout = time.Second
	cfg.DeadNodeReclaimTime = 500 * time.Millisecond
	return cfg
}

func startMesh(t testing.TB, cfg Config) *Mesh {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("Shutdown(%s): %v", cfg.Name, err)
		}
	})
	return m
}

// startCluster starts n meshes named n0..n{n-1}, joins them through n0 and
// waits until every one sees all n alive.
func startCluster(t testing.TB, n int, config func(t testing.TB, name string) Config) []*Mesh {
	t.Helper()
	meshes := make([]*Mesh, n)
	for i := range meshes {
		meshes[i] = startMesh(t, config(t, fmt.Sprintf("n%d", i)))
	}
	seed := meshes[0].Local().Address()
	for _, m := range meshes[1:] {
		if _, err := m.Join([]string{seed}); err != nil {
			t.Fatalf("%s: Join(%s): %v", m.Local().Name, seed, err)
		}
	}
	for _, m := range meshes {
		waitFor(t, 10*time.Second, m.Local().Name+" sees all alive", func() (bool, string) {
			alive := m.Alive()
			return len(alive) == n, describe(m.Members())
		})
	}
	return meshes
}

// waitFor polls cond until it holds or timeout passes, then fails the test
// with the last state cond described.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		case <-tick.C:
		}
	}
}

// waitEvent reads events until one matches, failing after timeout with the
// events seen.
func waitEvent(t testing.TB, events <-chan Event, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("events closed while waiting for %s; seen %v", what, seen)
			}
			if match(ev) {
				return ev
			}
			seen = append(seen, ev.Type.String()+":"+ev.Member.Name)
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; seen %v", timeout, what, seen)
		}
	}
}

func describe(members []Member) string {
	parts := make([]string, len(members))
	for i, m := range members {
		parts[i] = fmt.Sprintf("%s=%s@%s", m.Name, m.Status, m.Address())
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func member(m *Mesh, name string) (Member, bool) {
	for _, mem := range m.Members() {
		if mem.Name == name {
			return mem, true
		}
	}
	return Member{}, false
}

func TestClusterFormation(t *testing.T) {
	meshes := startCluster(t, 3, fastConfig)
	for _, m := range meshes {
		self := m.Local()
		if self.Status != StatusAlive || self.Addr != "127.0.0.1" || self.Port == 0 {
			t.Errorf("%s: Local() = %+v", self.Name, self)
		}
		members := m.Members()
		if got := describe(members); !strings.HasPrefix(got, "[n0=alive") || len(members) != 3 {
			t.Errorf("%s: Members() = %s, want n0..n2 alive in order", self.Name, got)
		}
		for i, mem := range members {
			want := fmt.Sprintf("n%d", i)
			if mem.Name != want || mem.Status != StatusAlive {
				t.Errorf("%s: member %d = %s %s, want %s alive", self.Name, i, mem.Name, mem.Status, want)
			}
			if !proto.Equal(mem.Meta, testMeta(want)) {
				t.Errorf("%s: meta of %s = %v, want %v", self.Name, mem.Name, mem.Meta, testMeta(want))
			}
		}
	}
	// The first events of n0 are its own join then the others'.
	ev := waitEvent(t, meshes[0].Events(), time.Second, "n0 self join", func(Event) bool { return true })
	if ev.Type != EventJoin || ev.Member.Name != "n0" {
		t.Errorf("first event of n0 = %v %s, want join n0", ev.Type, ev.Member.Name)
	}
	waitEvent(t, meshes[0].Events(), time.Second, "n0 sees n2 join", func(ev Event) bool {
		return ev.Type == EventJoin && ev.Member.Name == "n2"
	})
}

func TestUpdateMeta(t *testing.T) {
	meshes := startCluster(t, 3, fastConfig)
	notify, cancel := meshes[0].Subscribe()
	before, _ := member(meshes[0], "n1")

	meta := testMeta("n1")
	meta.Labels["disk"] = "ssd"
	meta.RaftBootstrapped = true
	if err := meshes[1].UpdateMeta(meta); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	meta.Labels["disk"] = "changed after the call" // the mesh must hold its own copy
	want := testMeta("n1")
	want.Labels["disk"] = "ssd"
	want.RaftBootstrapped = true

	if got := meshes[1].Local().Meta; !proto.Equal(got, want) {
		t.Errorf("n1 Local().Meta = %v, want %v", got, want)
	}
	for _, m := range []*Mesh{meshes[0], meshes[2]} {
		waitFor(t, 5*time.Second, m.Local().Name+" sees new meta of n1", func() (bool, string) {
			got, _ := member(m, "n1")
			return proto.Equal(got.Meta, want), fmt.Sprint(got.Meta)
		})
	}
	ev := waitEvent(t, meshes[0].Events(), time.Second, "update of n1", func(ev Event) bool {
		return ev.Type == EventUpdate && ev.Member.Name == "n1"
	})
	if !proto.Equal(ev.Member.Meta, want) {
		t.Errorf("update event meta = %v, want %v", ev.Member.Meta, want)
	}
	after, _ := member(meshes[0], "n1")
	if !after.Since.Equal(before.Since) || after.Status != StatusAlive {
		t.Errorf("n1 after update: status %s since %v, want alive since %v (unchanged)", after.Status, after.Since, before.Since)
	}
	select {
	case <-notify:
	default:
		t.Errorf("Subscribe channel got no notification for the update")
	}
	cancel()
	if _, ok := <-notify; ok {
		t.Errorf("Subscribe channel still open after cancel")
	}
	cancel() // idempotent

	big := &shoalpb.NodeMeta{PodCidr: strings.Repeat("x", 600)}
	if err := meshes[1].UpdateMeta(big); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("UpdateMeta(oversize) = %v, want ErrMetaTooLarge", err)
	}
}

func TestMemberGone(t *testing.T) {
	tests := []struct {
		name       string
		leave      bool
		wantStatus Status
		wantEvent  EventType
	}{
		{name: "shutdown without leave is a failure", leave: false, wantStatus: StatusDead, wantEvent: EventFailed},
		{name: "leave is a departure", leave: true, wantStatus: StatusLeft, wantEvent: EventLeave},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meshes := startCluster(t, 3, fastConfig)
			victim, observers := meshes[2], meshes[:2]
			start := time.Now()
			if tt.leave {
				if err := victim.Leave(2 * time.Second); err != nil {
					t.Fatalf("Leave: %v", err)
				}
				if got := victim.Local().Status; got != StatusLeft {
					t.Errorf("victim Local().Status after Leave = %s, want left", got)
				}
			}
			if err := victim.Shutdown(); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			var worst time.Duration
			for _, m := range observers {
				ev := waitEvent(t, m.Events(), 10*time.Second, fmt.Sprintf("%s: %v of n2", m.Local().Name, tt.wantEvent), func(ev Event) bool {
					return ev.Member.Name == "n2" && (ev.Type == EventFailed || ev.Type == EventLeave)
				})
				if ev.Type != tt.wantEvent || ev.Member.Status != tt.wantStatus {
					t.Fatalf("%s: event %v status %s, want %v %s", m.Local().Name, ev.Type, ev.Member.Status, tt.wantEvent, tt.wantStatus)
				}
				got, ok := member(m, "n2")
				if !ok || got.Status != tt.wantStatus || got.Since.Before(start) || !proto.Equal(got.Meta, testMeta("n2")) {
					t.Errorf("%s: member n2 = %+v (found %v), want %s since after %v with its last meta", m.Local().Name, got, ok, tt.wantStatus, start)
				}
				if alive := m.Alive(); len(alive) != 2 {
					t.Errorf("%s: Alive() = %s, want 2 members", m.Local().Name, describe(alive))
				}
				worst = max(worst, got.Since.Sub(start))
			}
			t.Logf("n2 %s on all observers %v after shutdown (fast test timing)", tt.wantStatus, worst.Round(time.Millisecond))

			if !observers[0].Forget("n2") {
				t.Errorf("Forget(n2) = false, want true")
			}
			if _, ok := member(observers[0], "n2"); ok || observers[0].Forget("n1") || observers[0].Forget("n0") {
				t.Errorf("after Forget: members %s; live or local members must not be forgotten", describe(observers[0].Members()))
			}
		})
	}
}

// TestDetectionTimeDefault measures how long the DefaultConfig timing takes
// to declare a killed agent dead in a 5-node loopback cluster.
func TestDetectionTimeDefault(t *testing.T) {
	meshes := startCluster(t, 5, func(t testing.TB, name string) Config {
		cfg := DefaultConfig()
		cfg.Name = name
		cfg.BindAddr = "127.0.0.1"
		cfg.BindPort = 0
		cfg.Meta = testMeta(name)
		cfg.Logger = testLogger(t)
		return cfg
	})
	victim := meshes[4]
	start := time.Now()
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var first, last time.Duration
	for i, m := range meshes[:4] {
		waitFor(t, 15*time.Second, m.Local().Name+" sees n4 dead", func() (bool, string) {
			got, _ := member(m, "n4")
			return got.Status == StatusDead, describe(m.Members())
		})
		got, _ := member(m, "n4")
		d := got.Since.Sub(start)
		if i == 0 || d < first {
			first = d
		}
		last = max(last, d)
	}
	t.Logf("killed member declared dead after %v (first observer) .. %v (last of 4), DefaultConfig timing",
		first.Round(time.Millisecond), last.Round(time.Millisecond))
	if last > 8*time.Second {
		t.Errorf("detection took %v, want a few seconds", last)
	}
}

func TestRejoinSameNameNewAddress(t *testing.T) {
	meshes := startCluster(t, 3, fastConfig)
	old := meshes[2].Local()
	if err := meshes[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n0 sees n2 dead", func() (bool, string) {
		got, _ := member(meshes[0], "n2")
		return got.Status == StatusDead, describe(meshes[0].Members())
	})

	restarted := startMesh(t, fastConfig(t, "n2")) // BindPort 0: a new port
	if restarted.Local().Port == old.Port {
		t.Fatalf("restarted n2 got the old port %d; test needs a new address", old.Port)
	}
	if _, err := restarted.Join([]string{meshes[0].Local().Address()}); err != nil {
		t.Fatalf("Join: %v", err)
	}
	for _, m := range meshes[:2] {
		waitFor(t, 10*time.Second, m.Local().Name+" sees n2 alive at its new address", func() (bool, string) {
			got, _ := member(m, "n2")
			return got.Status == StatusAlive && got.Port == restarted.Local().Port, describe(m.Members())
		})
	}
	waitEvent(t, meshes[0].Events(), time.Second, "n0 sees n2 rejoin", func(ev Event) bool {
		return ev.Type == EventJoin && ev.Member.Name == "n2" && ev.Member.Port == restarted.Local().Port
	})
}

// rawMeta is a memberlist delegate advertising arbitrary meta bytes, as a
// buggy or foreign node could.
type rawMeta struct{ b []byte }

func (r rawMeta) NodeMeta(int) []byte                  { return r.b }
func (rawMeta) NotifyMsg([]byte)                       {}
func (rawMeta) GetBroadcasts(int, int) [][]byte        { return nil }
func (rawMeta) LocalState(bool) []byte                 { return nil }
func (rawMeta) MergeRemoteState(buf []byte, join bool) {}

func TestUndecodableRemoteMeta(t *testing.T) {
	m := startMesh(t, fastConfig(t, "n0"))

	mc := memberlist.DefaultLocalConfig()
	mc.Name = "foreign"
	mc.BindAddr = "127.0.0.1"
	mc.BindPort = 0
	mc.Delegate = rawMeta{b: []byte{0x0a, 0x01, 0xff, 0x30}} // invalid UTF-8, truncated varint
	mc.Logger = newMemberlistLogger(testLogger(t), nil)
	foreign, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = foreign.Shutdown() })
	if _, err := foreign.Join([]string{m.Local().Address()}); err != nil {
		t.Fatalf("foreign Join: %v", err)
	}
	waitFor(t, 5*time.Second, "n0 sees foreign", func() (bool, string) {
		got, ok := member(m, "foreign")
		return ok && got.Status == StatusAlive, describe(m.Members())
	})
	got, _ := member(m, "foreign")
	if got.Meta != nil {
		t.Errorf("foreign meta = %v, want nil", got.Meta)
	}
	if err := m.UpdateMeta(testMeta("n0")); err != nil { // the mesh still works
		t.Errorf("UpdateMeta after bad remote meta: %v", err)
	}
}

func TestEncryption(t *testing.T) {
	key := []byte("0123456789abcdef")
	withKey := func(k []byte) func(testing.TB, string) Config {
		return func(t testing.TB, name string) Config {
			cfg := fastConfig(t, name)
			cfg.SecretKey = k
			return cfg
		}
	}
	meshes := startCluster(t, 2, withKey(key))
	intruder := startMesh(t, withKey([]byte("fedcba9876543210"))(t, "intruder"))
	if n, err := intruder.Join([]string{meshes[0].Local().Address()}); err == nil {
		t.Errorf("Join with a wrong key contacted %d nodes, want an error", n)
	}
	if _, ok := member(meshes[0], "intruder"); ok {
		t.Errorf("n0 accepted a node with the wrong key: %s", describe(meshes[0].Members()))
	}
}

func TestAfterShutdown(t *testing.T) {
	m := startMesh(t, fastConfig(t, "n0"))
	sub, _ := m.Subscribe()
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	if err := m.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Errorf("Leave = %v, want ErrShutdown", err)
	}
	if err := m.UpdateMeta(testMeta("n0")); !errors.Is(err, ErrShutdown) {
		t.Errorf("UpdateMeta = %v, want ErrShutdown", err)
	}
	if _, err := m.Join([]string{"127.0.0.1:1"}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Join = %v, want ErrShutdown", err)
	}
	for range m.Events() { // drains, then ends because the channel is closed
	}
	if _, ok := <-sub; ok {
		t.Errorf("Subscribe channel open after Shutdown")
	}
	if late, _ := m.Subscribe(); late != nil {
		if _, ok := <-late; ok {
			t.Errorf("Subscribe after Shutdown returned an open channel")
		}
	}
}

func TestEventsDropOldest(t *testing.T) {
	m := bareMesh("n0")
	m.events = make(chan Event, 2)
	notify, _ := m.Subscribe()
	m.mu.Lock()
	for i := range 5 {
		m.emitLocked(Event{Type: EventJoin, Member: Member{Name: fmt.Sprintf("m%d", i)}})
	}
	m.mu.Unlock()
	if got := m.DroppedEvents(); got != 3 {
		t.Errorf("DroppedEvents = %d, want 3", got)
	}
	for _, want := range []string{"m3", "m4"} {
		if ev := <-m.Events(); ev.Member.Name != want {
			t.Errorf("event %s, want %s (newest kept)", ev.Member.Name, want)
		}
	}
	if len(notify) != 1 {
		t.Errorf("subscriber has %d pending notifications, want 1 (coalesced)", len(notify))
	}
}
