// Package kubelet does the kubelet's duties on one agent: it watches the
// local replica for pods bound to this node and makes them so through the
// runtime driver, runs their probes, restarts containers by restart policy
// with exponential back-off, and reports pod status in batched writes.
//
// Pod state (Kubelet.pods and everything reachable from it) is guarded by
// Kubelet.mu. One goroutine, the sync loop, decides what to do; the slow
// driver calls run in goroutines of their own and never under mu:
//   - container starts and pod network setups (start.go), at most
//     Config.MaxParallelStarts at once, are marked in flight under mu
//     before they are launched (a starting container is neither started
//     again nor counted as exited, and shows ContainerCreating), apply
//     their result under mu when they return and wake the loop;
//   - container stops and probes report back on channels.
//
// A pod leaves Kubelet.pods, and the driver's RemovePod runs, only once
// nothing of it runs, stops or is in flight, so RemovePod never races with
// a Start of the same pod; a start that returns for a pod deleted meanwhile
// stops what it started. Lock order: mu, then statusMu; usage.mu is taken
// alone; a start slot is never waited for with mu held.
//
// The kubelet must not schedule pods or run controllers.
package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/agent/events"
	"github.com/shoal-dev/shoal/agent/informer"
	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/consensus/state"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Writer commits status writes (the agent's API server, which forwards to
// the leader).
type Writer interface {
	Txn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error)
}

// Config configures a Kubelet.
type Config struct {
	Node   string
	NodeIP string
	Driver runtime.Driver
	Store  *state.Store
	// Pods is the decoded view of Store; nil makes one.
	Pods   *informer.Informer
	Writer Writer
	// Synced returns nil once Store holds every write acknowledged before
	// the call (a linearizable read barrier). Until it has, once, the
	// kubelet stops none of the pods it adopted for being absent from
	// Store. Nil: Store is current from the start.
	Synced func(ctx context.Context) error
	Logger *slog.Logger
	Clock  func() time.Time
	// RestartBackoff is the first restart delay after a container exits;
	// it doubles at each restart up to MaxBackoff and resets after a
	// container has run for BackoffReset.
	RestartBackoff time.Duration
	MaxBackoff     time.Duration
	BackoffReset   time.Duration
	// StatusInterval batches status writes.
	StatusInterval time.Duration
	// ResyncInterval bounds how long a change can wait for the sync loop.
	ResyncInterval time.Duration
	// StatsInterval is how often the CPU and memory use of running
	// containers is sampled (drivers implementing runtime.Stats).
	StatsInterval time.Duration
	// Events records what happens to pods (nil records nothing).
	Events *events.Recorder
	// MaxParallelStarts bounds the container starts and pod network
	// setups in flight at once (image pulls, CNI plugin runs), so a burst
	// of pods does not fork a plugin run per pod at once.
	MaxParallelStarts int

	// Services lists the services of a namespace, from which containers get
	// the FOO_SERVICE_HOST and FOO_SERVICE_PORT variables of the services
	// existing when they start. nil lists none.
	Services func(namespace string) []*corev1.Service
	// DNSServer is the node's cluster DNS address, the nameserver of pods
	// with dnsPolicy ClusterFirst. The zero Addr means cluster DNS is off:
	// those pods then get the node's resolv.conf, as in Kubernetes.
	DNSServer netip.Addr
	// ClusterDomain is the DNS domain of services and pods, the tail of the
	// search path of ClusterFirst pods.
	ClusterDomain string
	// HostResolvConf is the node's resolv.conf, the start of the resolv.conf
	// of pods with dnsPolicy Default (or without cluster DNS).
	HostResolvConf string
}

// DefaultConfig returns the Kubernetes timings: 10 s first back-off, 5 min
// cap, reset after 10 min of running.
func DefaultConfig() Config {
	return Config{
		RestartBackoff: 10 * time.Second,
		MaxBackoff:     5 * time.Minute,
		BackoffReset:   10 * time.Minute,
		StatusInterval: 200 * time.Millisecond,
		ResyncInterval: time.Second,
		StatsInterval:  10 * time.Second,
		ClusterDomain:  "cluster.local",
		HostResolvConf: "/etc/resolv.conf",

		MaxParallelStarts: 8,
	}
}

// Kubelet runs the pods of one node.
type Kubelet struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex // guards pods, for the loop, the starts, Logs and Exec
	pods map[string]*podState

	probeResults chan probeResult
	stopped      chan stopResult
	quit         chan struct{}  // closed when Run stops reading stopped
	wg           sync.WaitGroup // probes, stops, removals, status and stats loops

	slots  chan struct{}  // one per start in flight (start.go), MaxParallelStarts
	starts sync.WaitGroup // the start goroutines; shutdown waits for them first
	wake   chan struct{}  // a start finished: sync again

	statusMu  sync.Mutex
	pending   map[string]*pb.Object // pod key -> status write waiting
	written   map[string]string     // pod uid -> last status JSON written
	statusSig chan struct{}

	network runtime.PodNetwork // the driver's, when it gives pods their own network
	stats   runtime.Stats      // the driver's, when it measures containers
	usage   usageTable         // the latest samples of stats
	synced  atomic.Bool        // the replica has caught up since Run began
}

// New returns a kubelet; Run starts it.
func New(cfg Config) *Kubelet {
	def := DefaultConfig()
	if cfg.RestartBackoff == 0 {
		cfg.RestartBackoff = def.RestartBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = def.MaxBackoff
	}
	if cfg.BackoffReset == 0 {
		cfg.BackoffReset = def.BackoffReset
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = def.StatusInterval
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = def.ResyncInterval
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = def.StatsInterval
	}
	if cfg.MaxParallelStarts <= 0 {
		cfg.MaxParallelStarts = def.MaxParallelStarts
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = def.ClusterDomain
	}
	if cfg.HostResolvConf == "" {
		cfg.HostResolvConf = def.HostResolvConf
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Pods == nil {
		cfg.Pods = informer.New(cfg.Store, cfg.Logger)
	}
	k := &Kubelet{
		cfg:          cfg,
		log:          cfg.Logger,
		pods:         map[string]*podState{},
		probeResults: make(chan probeResult, 256),
		stopped:      make(chan stopResult, 64),
		quit:         make(chan struct{}),
		pending:      map[string]*pb.Object{},
		written:      map[string]string{},
		statusSig:    make(chan struct{}, 1),
		slots:        make(chan struct{}, cfg.MaxParallelStarts),
		wake:         make(chan struct{}, 1),
	}
	k.network, _ = cfg.Driver.(runtime.PodNetwork)
	k.stats, _ = cfg.Driver.(runtime.Stats)
	return k
}

// Run adopts what the driver already runs, then syncs pods until ctx ends.
// Containers keep running when it returns: an agent restart re-adopts them.
func (k *Kubelet) Run(ctx context.Context) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		k.statusLoop(ctx)
	}()
	k.adopt()
	k.startStatsLoop(ctx)
	synced := k.waitSynced(ctx)
	tick := time.NewTicker(k.cfg.ResyncInterval)
	defer tick.Stop()
	events := k.cfg.Driver.Events()
	for {
		changed := k.cfg.Store.Changed()
		k.sync(ctx)
		select {
		case <-ctx.Done():
			k.shutdown()
			return
		case <-changed:
		case <-tick.C:
		case <-synced:
			synced = nil
		case st, ok := <-events:
			if !ok {
				events = nil // the driver closed: the agent is stopping
				continue
			}
			k.onExit(st)
		case r := <-k.probeResults:
			k.onProbe(ctx, r)
		case r := <-k.stopped:
			k.onStopped(r)
		case <-k.wake:
		}
	}
}

// waitSynced marks the kubelet synced once Config.Synced returns nil
// (retried every half second), closing the returned channel then.
func (k *Kubelet) waitSynced(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if k.cfg.Synced == nil {
		k.synced.Store(true)
		close(done)
		return done
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for {
			if err := k.cfg.Synced(ctx); err == nil {
				k.synced.Store(true)
				close(done)
				return
			} else {
				k.log.Debug("replica not caught up yet; keeping adopted pods", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return done
}

// shutdown waits for the starts in flight (ctx has ended, so none begins
// and those in a driver call see it cancelled), then stops the probes and
// waits for every other goroutine. Containers keep running.
func (k *Kubelet) shutdown() {
	close(k.quit)   // nobody reads k.stopped any more
	k.starts.Wait() // first: a start that returns may start probes
	k.mu.Lock()
	for _, p := range k.pods {
		for _, c := range p.containers {
			c.stopProbes()
		}
	}
	k.mu.Unlock()
	k.wg.Wait()
}

// boundPods lists the non-deleted pods bound to this node.
func (k *Kubelet) boundPods() map[string]*corev1.Pod {
	pods := k.cfg.Pods.PodsOn(k.cfg.Node)
	out := make(map[string]*corev1.Pod, len(pods))
	for _, p := range pods {
		out[string(p.Pod.UID)] = p.Pod
	}
	return out
}

// sync brings every pod bound here toward its spec and drops the rest.
func (k *Kubelet) sync(ctx context.Context) {
	bound := k.boundPods()
	now := k.cfg.Clock()
	k.mu.Lock()
	defer k.mu.Unlock()
	for uid, pod := range bound {
		p, ok := k.pods[uid]
		if !ok {
			p = newPodState(pod)
			k.pods[uid] = p
			k.log.Info("pod bound here", "pod", p.key())
		}
		p.pod = pod
		if isTerminal(pod) && !p.terminal {
			// Failed or finished by someone else (node lost while away):
			// stop what still runs and never restart it.
			p.terminal = true
			k.stopPodLocked(p, "pod is "+string(pod.Status.Phase))
		}
		if !p.terminal {
			k.syncPodLocked(ctx, p, now)
		}
		k.queueStatusLocked(p, now)
	}
	for uid, p := range k.pods {
		if _, ok := bound[uid]; ok {
			continue
		}
		if !k.synced.Load() {
			// Just restarted: the replica may not yet hold the pods it
			// adopted (Raft replays the log only once a leader commits).
			// Absence proves nothing until it has caught up.
			continue
		}
		if !p.removing {
			p.removing = true
			k.log.Info("pod gone or bound elsewhere: stopping", "pod", p.key())
			k.stopPodLocked(p, "pod deleted")
		}
		if p.allStopped() {
			k.wg.Add(1)
			go func(uid string, grace time.Duration) {
				defer k.wg.Done()
				cctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
				defer cancel()
				if err := k.cfg.Driver.RemovePod(cctx, uid, grace); err != nil {
					k.log.Warn("remove pod", "uid", uid, "err", err)
				}
			}(uid, p.grace())
			delete(k.pods, uid)
			k.statusMu.Lock()
			delete(k.written, uid)
			k.statusMu.Unlock()
		}
	}
}

func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded
}

// adopt takes over the containers the driver runs from before an agent
// restart: the newest attempt of each container becomes its current one;
// containers of pods no longer bound here are stopped by the first sync.
func (k *Kubelet) adopt() {
	list, err := k.cfg.Driver.List()
	if err != nil {
		k.log.Warn("list runtime containers", "err", err)
		return
	}
	bound := k.boundPods()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, st := range list {
		uid := st.ID.PodUID
		p, ok := k.pods[uid]
		if !ok {
			pod := bound[uid]
			if pod == nil {
				// Not ours any more: a placeholder so that sync stops it.
				pod = &corev1.Pod{}
				pod.UID = typesUID(uid)
				pod.Namespace, pod.Name = st.Pod.Namespace, st.Pod.Name
			}
			p = newPodState(pod)
			k.pods[uid] = p
		}
		c := p.container(st.ID.Name)
		if c.attempt > st.ID.Attempt {
			continue
		}
		c.adopt(st)
		k.log.Info("adopted container", "pod", p.key(), "container", st.ID.Name, "attempt", st.ID.Attempt, "running", st.Running)
	}
}

// onExit records a container exit reported by the driver.
func (k *Kubelet) onExit(st runtime.Status) {
	if st.Running {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.pods[st.ID.PodUID]
	if p == nil {
		return
	}
	c := p.containers[st.ID.Name]
	if c != nil && c.starting && st.ID.Attempt == c.attempt+1 {
		// The attempt exited before its start's result was applied:
		// applyStartLocked records it.
		c.early = &st
		return
	}
	// Not running: the exit is already recorded, by the result of the stop
	// that caused it (which can come first). Recording it again would lose
	// why the kubelet killed it.
	if c == nil || c.attempt != st.ID.Attempt || !c.running {
		return
	}
	c.exited(st, k.cfg.Clock())
	k.log.Info("container exited", "pod", p.key(), "container", c.name, "attempt", c.attempt, "code", st.ExitCode, "reason", st.Reason)
}

type stopResult struct {
	uid, name string
	attempt   int
	st        runtime.Status
	err       error
}

func (k *Kubelet) onStopped(r stopResult) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.pods[r.uid]
	if p == nil {
		return
	}
	c := p.containers[r.name]
	if c == nil || c.attempt != r.attempt {
		return
	}
	c.stopping = false
	if r.err != nil {
		k.log.Warn("stop container", "pod", p.key(), "container", r.name, "err", r.err)
		return
	}
	if c.running {
		c.exited(r.st, k.cfg.Clock())
	}
}

// stopPodLocked stops every running container of p in the background.
func (k *Kubelet) stopPodLocked(p *podState, why string) {
	for _, c := range p.containers {
		k.stopContainerLocked(p, c, why)
	}
}

func (k *Kubelet) stopContainerLocked(p *podState, c *ctrState, why string) {
	c.stopProbes()
	if !c.running || c.stopping {
		return
	}
	c.stopping = true
	k.event(p, corev1.EventTypeNormal, "Killing", fmt.Sprintf("Stopping container %s: %s", c.name, why))
	id := c.id()
	grace := p.grace()
	k.log.Info("stopping container", "pod", p.key(), "container", c.name, "why", why, "grace", grace)
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
		defer cancel()
		st, err := k.cfg.Driver.Stop(ctx, id, grace)
		select {
		case k.stopped <- stopResult{uid: id.PodUID, name: id.Name, attempt: id.Attempt, st: st, err: err}:
		case <-k.quit:
		}
	}()
}

func (p *podState) grace() time.Duration {
	if p.pod != nil && p.pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*p.pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

func (p *podState) key() string { return p.namespace + "/" + p.name }

// event records an event about the pod.
func (k *Kubelet) event(p *podState, typ, reason, msg string) {
	k.cfg.Events.Event(events.Ref{Kind: "Pod", Namespace: p.namespace, Name: p.name, UID: p.uid}, typ, reason, msg)
}
