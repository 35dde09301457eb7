package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

// ErrShutdown is returned by calls made after Shutdown.
var ErrShutdown = errors.New("gossip mesh is shut down")

// Status is a member's state as seen by the local node.
type Status string

const (
	StatusAlive Status = "alive"
	// StatusSuspect is reserved: memberlist v0.6 tells delegates nothing
	// about suspicion, so a suspect node is reported as StatusAlive until it
	// is declared dead. Callers that count live nodes should still treat
	// suspect as alive (Alive does).
	StatusSuspect Status = "suspect"
	// StatusDead is a node that failed: it stopped answering probes.
	StatusDead Status = "dead"
	// StatusLeft is a node that left on purpose (Leave).
	StatusLeft Status = "left"
)

// leaveIntentTTL is how long a peer's announced leave is remembered while
// waiting for memberlist's leave message; a node that announced its leave and
// fails much later is dead, not left.
const leaveIntentTTL = time.Minute

// leaveWorkers bounds the concurrent connections used to announce a leave.
const leaveWorkers = 16

// Member is one node of the cluster as seen by the local node.
type Member struct {
	Name   string
	Addr   string // IP
	Port   int    // gossip port
	Status Status
	// Meta is the node's advertised facts; nil when they could not be
	// decoded. Shared between callers: treat it as read-only.
	Meta *shoalpb.NodeMeta
	// Since is when Status last changed, by the local clock.
	Since time.Time
}

// Address returns the member's gossip address as host:port.
func (m Member) Address() string {
	return net.JoinHostPort(m.Addr, strconv.Itoa(m.Port))
}

// IsAlive reports whether the member counts as live (alive or suspect).
func (m Member) IsAlive() bool {
	return m.Status == StatusAlive || m.Status == StatusSuspect
}

// EventType says what happened to a member.
type EventType int

const (
	// EventJoin: a node appeared, or came back after being dead or left.
	EventJoin EventType = iota
	// EventUpdate: a live node changed its facts or address.
	EventUpdate
	// EventLeave: a node left on purpose.
	EventLeave
	// EventFailed: a node was declared dead by the failure detector.
	EventFailed
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	case EventFailed:
		return "failed"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Event is a membership change; Member is the member's state after it.
type Event struct {
	Type   EventType
	Member Member
}

// Mesh is this node's membership in the gossip cluster.
type Mesh struct {
	cfg  Config
	log  *slog.Logger
	ml   *memberlist.Memberlist
	name string
	// quietML demotes memberlist's log lines to Debug once shutting down.
	quietML atomic.Bool

	// life serialises Leave, UpdateMeta and Shutdown against each other:
	// memberlist panics on Leave after Shutdown.
	life     sync.Mutex
	shutdown bool

	// mu guards the fields below. Invariant: never call into memberlist
	// while holding mu, because memberlist calls the delegate (which takes
	// mu) while holding its own node lock.
	mu      sync.Mutex
	meta    []byte // local facts, encoded; replaced, never mutated
	members map[string]Member
	events  chan Event
	dropped uint64
	subs    map[chan struct{}]struct{}
	// leaving holds peers that announced their leave, and when.
	leaving map[string]time.Time
	closed  bool // set on Shutdown: delegate calls become no-ops
}

// New creates the local node and starts listening. It does not contact any
// other node; call Join for that.
func New(cfg Config) (*Mesh, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base := logger.With("node", cfg.Name)
	logger = base.With("component", "gossip")
	meta, err := EncodeMeta(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("create gossip mesh %s: %w", cfg.Name, err)
	}
	cfg.Meta = nil // encoded above; the caller keeps its message
	m := &Mesh{
		cfg:     cfg,
		log:     logger,
		name:    cfg.Name,
		meta:    meta,
		members: make(map[string]Member),
		events:  make(chan Event, cfg.EventBuffer),
		subs:    make(map[chan struct{}]struct{}),
		leaving: make(map[string]time.Time),
	}
	// memberlist.Create announces the local node, which calls the delegate
	// (NotifyJoin for ourselves) before it returns: m must be ready here.
	ml, err := memberlist.Create(cfg.memberlistConfig(&delegate{m: m}, newMemberlistLogger(base, &m.quietML)))
	if err != nil {
		return nil, fmt.Errorf("create gossip mesh %s on %s:%d: %w", cfg.Name, cfg.BindAddr, cfg.BindPort, err)
	}
	m.ml = ml
	local := m.Local()
	logger.Info("gossip listening", "addr", local.Address())
	return m, nil
}

// Join contacts the given agents and merges their view of the cluster. Each
// address is "ip", "ip:port", "host" or "host:port"; the port defaults to
// DefaultPort. It returns how many agents were reached, and an error only
// when none was.
func (m *Mesh) Join(addrs []string) (int, error) {
	if m.isShutdown() {
		return 0, ErrShutdown
	}
	norm := make([]string, 0, len(addrs))
	for _, a := range addrs {
		n, err := normalizeJoinAddr(a)
		if err != nil {
			return 0, fmt.Errorf("join %v: %w", addrs, err)
		}
		norm = append(norm, n)
	}
	if len(norm) == 0 {
		return 0, errors.New("join: no addresses")
	}
	n, err := m.ml.Join(norm)
	if err != nil {
		return n, fmt.Errorf("join %v: %w", norm, err)
	}
	m.log.Debug("joined", "contacted", n, "addrs", norm)
	return n, nil
}

// normalizeJoinAddr adds DefaultPort to an address that has none.
func normalizeJoinAddr(a string) (string, error) {
	a = strings.TrimSpace(a)
	if a == "" {
		return "", errors.New("empty address")
	}
	if ip := net.ParseIP(a); ip != nil { // bare IPv4 or IPv6
		return net.JoinHostPort(ip.String(), strconv.Itoa(DefaultPort)), nil
	}
	if host, port, err := net.SplitHostPort(a); err == nil {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 || host == "" {
			return "", fmt.Errorf("address %q: bad host or port", a)
		}
		return a, nil
	}
	// "[::1]" or a host name without a port.
	host := a
	if strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]") {
		host = a[1 : len(a)-1]
	}
	if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return "", fmt.Errorf("address %q: cannot parse", a)
	}
	return net.JoinHostPort(host, strconv.Itoa(DefaultPort)), nil
}

// Members returns every member known to this node, sorted by name,
// including dead and left ones (kept until they rejoin or are forgotten).
func (m *Mesh) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, mem)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Alive returns the live members (alive or suspect), sorted by name. It
// includes the local node unless it has left.
func (m *Mesh) Alive() []Member {
	all := m.Members()
	out := all[:0]
	for _, mem := range all {
		if mem.IsAlive() {
			out = append(out, mem)
		}
	}
	return out
}

// Local returns the local node as the cluster sees it.
func (m *Mesh) Local() Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members[m.name]
}

// Forget drops a dead or left member from Members, once callers no longer
// need to know about it (for example after autopilot removed it from Raft).
// It reports whether the member was dropped; live members are kept.
func (m *Mesh) Forget(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mem, ok := m.members[name]
	if !ok || mem.IsAlive() || name == m.name {
		return false
	}
	delete(m.members, name)
	m.notifyLocked()
	return true
}

// UpdateMeta replaces the local node facts and gossips them. It waits up to
// Config.BroadcastTimeout for the update to reach another node; on timeout
// the new facts are still in effect locally and spread with the next
// push/pull.
func (m *Mesh) UpdateMeta(meta *shoalpb.NodeMeta) error {
	b, err := EncodeMeta(meta)
	if err != nil {
		return fmt.Errorf("update meta of %s: %w", m.name, err)
	}
	m.life.Lock()
	defer m.life.Unlock()
	if m.shutdown {
		return ErrShutdown
	}
	m.mu.Lock()
	m.meta = b
	m.mu.Unlock()
	if err := m.ml.UpdateNode(m.cfg.BroadcastTimeout); err != nil {
		return fmt.Errorf("update meta of %s: %w", m.name, err)
	}
	return nil
}

// Events returns the membership changes seen by this node, starting with
// the local node's own join. The channel is buffered (Config.EventBuffer);
// memberlist is never blocked: when the buffer is full the oldest event is
// dropped (counted by DroppedEvents), so a slow reader should re-read
// Members, which is always current. The channel is closed by Shutdown.
func (m *Mesh) Events() <-chan Event { return m.events }

// DroppedEvents returns how many events were dropped because the Events
// channel was full.
func (m *Mesh) DroppedEvents() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// Subscribe returns a channel that receives a value after any membership
// change (join, update, leave, failure, Forget). Notifications coalesce:
// one value may stand for several changes, so read Members after each.
// The cancel function stops and closes the channel; Shutdown closes it too.
func (m *Mesh) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		close(ch)
		return ch, func() {}
	}
	m.subs[ch] = struct{}{}
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[ch]; ok {
			delete(m.subs, ch)
			close(ch)
		}
	}
}

// Leave tells the cluster that this node is going away on purpose, so that
// others mark it left rather than dead. It first announces the leave to every
// live peer directly, then broadcasts memberlist's leave and waits for it to
// reach another node, all within timeout (0: no limit; an unreachable peer
// still costs up to TCPTimeout). Peers that miss the announcement report the
// node dead. Call Shutdown afterwards.
func (m *Mesh) Leave(timeout time.Duration) error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.shutdown {
		return ErrShutdown
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	told, peers := m.announceLeave(deadline)
	remaining := timeout
	if timeout > 0 {
		// memberlist reads 0 as "no limit": keep a positive remainder.
		remaining = max(time.Until(deadline), time.Millisecond)
	}
	if err := m.ml.Leave(remaining); err != nil {
		return fmt.Errorf("leave gossip mesh as %s (announced to %d of %d peers): %w", m.name, told, peers, err)
	}
	m.log.Info("left gossip mesh", "announced", told, "peers", peers)
	return nil
}

// announceLeave sends a leave intent to every live peer over TCP, so that
// they record this node as left when memberlist's leave message arrives. It
// returns how many peers were told, of how many. Its goroutines end before it
// returns.
func (m *Mesh) announceLeave(deadline time.Time) (told, peers int) {
	var targets []Member
	for _, mem := range m.Alive() {
		if mem.Name != m.name {
			targets = append(targets, mem)
		}
	}
	if len(targets) == 0 {
		return 0, 0
	}
	msg := encodeLeaveIntent(m.name)
	work := make(chan Member)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range min(leaveWorkers, len(targets)) {
		wg.Go(func() {
			for p := range work {
				node := &memberlist.Node{Name: p.Name, Addr: net.ParseIP(p.Addr), Port: uint16(p.Port)}
				if err := m.ml.SendReliable(node, msg); err != nil {
					m.log.Debug("announce leave", "member", p.Name, "err", err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	for _, p := range targets {
		if !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		work <- p
	}
	close(work)
	wg.Wait()
	return int(ok.Load()), len(targets)
}

// Shutdown stops gossiping and listening without telling the cluster (which
// will declare this node dead unless Leave was called first), and closes the
// Events and Subscribe channels. memberlist's goroutines exit shortly after
// it returns (an in-flight stream ends within Config.TCPTimeout). Safe to
// call more than once.
func (m *Mesh) Shutdown() error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.shutdown {
		return nil
	}
	m.shutdown = true
	m.quietML.Store(true)
	err := m.ml.Shutdown()

	m.mu.Lock()
	m.closed = true
	close(m.events)
	for ch := range m.subs {
		close(ch)
	}
	clear(m.subs)
	m.mu.Unlock()

	if err != nil {
		return fmt.Errorf("shut down gossip mesh %s: %w", m.name, err)
	}
	return nil
}

func (m *Mesh) isShutdown() bool {
	m.life.Lock()
	defer m.life.Unlock()
	return m.shutdown
}

// emitLocked records ev and notifies subscribers; m.mu must be held.
func (m *Mesh) emitLocked(ev Event) {
	if m.closed {
		return
	}
	select {
	case m.events <- ev:
	default:
		// Full: drop the oldest event to make room. The reader may take one
		// concurrently, in which case nothing is dropped; we are the only
		// sender (mu is held), so the second send then always succeeds.
		select {
		case <-m.events:
			m.dropped++
		default:
		}
		select {
		case m.events <- ev:
		default:
			m.dropped++
		}
	}
	m.notifyLocked()
}

func (m *Mesh) notifyLocked() {
	for ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default: // a notification is already pending
		}
	}
}

// delegate receives memberlist's callbacks. memberlist calls the event
// methods one at a time, while holding its node lock: they must not block
// and must not call back into memberlist.
type delegate struct{ m *Mesh }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

// NodeMeta returns the local facts, already checked against the limit.
func (d *delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if len(d.m.meta) > limit { // unreachable: EncodeMeta enforces MetaMaxSize
		d.m.log.Error("node meta over memberlist limit, advertising none", "bytes", len(d.m.meta), "limit", limit)
		return nil
	}
	return d.m.meta
}

// NotifyMsg receives user messages; the only one is a peer's leave intent.
func (d *delegate) NotifyMsg(b []byte) {
	m := d.m
	name, err := decodeLeaveIntent(b)
	if err != nil {
		m.log.Debug("ignoring gossip message", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mem, ok := m.members[name]
	if m.closed || !ok || name == m.name {
		return
	}
	switch mem.Status {
	case StatusDead:
		// memberlist's leave message won the race with the intent: the node
		// did leave. Since stays the time it went away.
		mem.Status = StatusLeft
		m.members[name] = mem
		m.log.Info("member left", "member", name, "addr", mem.Address())
		m.emitLocked(Event{Type: EventLeave, Member: mem})
	case StatusAlive, StatusSuspect:
		m.leaving[name] = time.Now()
	}
}

// Shoal keeps no gossip state beyond memberlist's own.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	m := d.m
	mem := m.memberFromNode(n, StatusAlive)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.members[mem.Name] = mem
	delete(m.leaving, mem.Name)
	if mem.Name != m.name {
		m.log.Info("member joined", "member", mem.Name, "addr", mem.Address())
	}
	m.emitLocked(Event{Type: EventJoin, Member: mem})
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	m := d.m
	mem := m.memberFromNode(n, StatusAlive)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if old, ok := m.members[mem.Name]; ok && old.Status == mem.Status {
		mem.Since = old.Since // an update is not a status change
	}
	m.members[mem.Name] = mem
	m.log.Debug("member updated", "member", mem.Name, "addr", mem.Address())
	m.emitLocked(Event{Type: EventUpdate, Member: mem})
}

// NotifyLeave is called both for a node that left and for one that failed.
// memberlist v0.6 does not say which (n.State is not set), so a node counts
// as left when it announced its leave (see msgLeaveIntent), when it is the
// local node (memberlist only marks itself gone in Leave), or when a later
// memberlist does set n.State.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	m := d.m
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	left := n.Name == m.name || n.State == memberlist.StateLeft
	if t, ok := m.leaving[n.Name]; ok {
		delete(m.leaving, n.Name)
		left = left || now.Sub(t) < leaveIntentTTL
	}
	status, typ := StatusDead, EventFailed
	if left {
		status, typ = StatusLeft, EventLeave
	}
	mem, ok := m.members[n.Name]
	if !ok { // never seen alive (does not happen with memberlist v0.6)
		mem = m.memberFromNode(n, status)
	}
	mem.Status, mem.Since = status, now
	m.members[mem.Name] = mem
	if typ == EventFailed {
		m.log.Info("member failed", "member", mem.Name, "addr", mem.Address())
	} else {
		m.log.Info("member left", "member", mem.Name, "addr", mem.Address())
	}
	m.emitLocked(Event{Type: typ, Member: mem})
}

// memberFromNode copies n (which memberlist owns) and decodes its facts. A
// node whose facts do not decode is kept with nil Meta: a bad or foreign
// agent must not take the mesh down.
func (m *Mesh) memberFromNode(n *memberlist.Node, status Status) Member {
	mem := Member{
		Name:   n.Name,
		Addr:   n.Addr.String(),
		Port:   int(n.Port),
		Status: status,
		Since:  time.Now(),
	}
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		m.log.Warn("ignoring undecodable node meta", "member", n.Name, "addr", mem.Address(), "bytes", len(n.Meta), "err", err)
		return mem
	}
	mem.Meta = meta
	return mem
}
