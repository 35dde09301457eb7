package agent

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/proto"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// httpHandler serves /healthz (the agent is up; body tells its Raft view),
// /readyz (it knows a leader and holds a replica), /metrics, and with
// EnableDebug the Go profiler under /debug/pprof/.
func (a *Agent) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		st := a.node.Status()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status": "ok", "node": a.cfg.Name, "raftState": st.State, "leader": st.Leader,
			"appliedIndex": st.AppliedIndex, "revision": a.node.Store().Revision(),
		})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		st := a.node.Status()
		if st.Leader == "" || !a.node.HasState() {
			http.Error(w, "no raft leader known", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	if a.cfg.EnableDebug {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// registerGossipMetrics exports the member counts by status.
func (a *Agent) registerGossipMetrics() {
	a.reg.MustRegister(gossipCollector{a: a, desc: prometheus.NewDesc("shoal_gossip_members",
		"Gossip members by status, as this agent sees them.", []string{"status"}, nil)})
}

type gossipCollector struct {
	a    *Agent
	desc *prometheus.Desc
}

func (c gossipCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c gossipCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{"alive": 0, "suspect": 0, "dead": 0, "left": 0}
	for _, m := range c.a.mesh.Members() {
		counts[string(m.Status)]++
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), s)
	}
}

func cloneMeta(m *pb.NodeMeta) *pb.NodeMeta { return proto.CloneOf(m) }

func newUID() string { return uuid.NewString() }
