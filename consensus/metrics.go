package consensus

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Raft and store figures an agent exports on /metrics.
type metrics struct {
	commit    prometheus.Histogram
	applies   prometheus.Counter
	refused   prometheus.Counter
	restores  prometheus.Counter
	elections prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_raft_commit_duration_seconds",
			Help:    "Time from proposing a write on the leader to its apply.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		applies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_store_applies_total",
			Help: "Commands applied to the local replica.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_store_refused_total",
			Help: "Applied commands whose transaction was refused (conflict, not found, ...).",
		}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_raft_snapshot_restores_total",
			Help: "Snapshots restored into the local replica (at start or sent by the leader).",
		}),
		elections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_raft_leader_terms_total",
			Help: "Terms in which this node became leader.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.commit, m.applies, m.refused, m.restores, m.elections)
	}
	return m
}

// registerGauges exports the node's live state, read at scrape time.
func (m *metrics) registerGauges(reg prometheus.Registerer, n *Node) {
	if reg == nil {
		return
	}
	state := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "shoal_raft_state",
		Help: "1 for this node's current Raft state, 0 for the others.",
	}, []string{"state"})
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shoal_raft_term", Help: "Current Raft term."},
			func() float64 { return float64(n.raft.CurrentTerm()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shoal_raft_applied_index", Help: "Last log index applied on this node."},
			func() float64 { return float64(n.raft.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shoal_raft_commit_index", Help: "Last log index this node knows committed."},
			func() float64 { return float64(n.raft.CommitIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shoal_store_revision", Help: "Revision of the local replica."},
			func() float64 { return float64(n.store.Revision()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shoal_store_objects", Help: "Objects in the local replica."},
			func() float64 { return float64(n.store.Len()) }),
		stateCollector{vec: state, n: n},
	)
}

// stateCollector sets the shoal_raft_state gauge at each scrape.
type stateCollector struct {
	vec *prometheus.GaugeVec
	n   *Node
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { c.vec.Describe(ch) }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	cur := c.n.raft.State()
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if s == cur {
			v = 1
		}
		c.vec.WithLabelValues(s.String()).Set(v)
	}
	c.vec.Collect(ch)
}
