// Package events records Kubernetes-style Events (core/v1 Event objects)
// for controllers and the kubelet: what happened to an object and why, as
// `shoal describe` shows. Events are best effort: they are batched, written
// in one transaction per interval, and dropped when the buffer is full or
// the write fails, never blocking the caller.
package events

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Writer commits transactions (the agent's API server).
type Writer interface {
	Txn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error)
}

// Ref names the object an event is about.
type Ref struct {
	Kind, Namespace, Name, UID string
}

// Recorder buffers events and writes them in batches.
type Recorder struct {
	writer    Writer
	component string
	host      string
	log       *slog.Logger
	clock     func() time.Time

	mu      sync.Mutex
	pending []*pb.Object
	seq     uint64
	dropped uint64
}

// maxPending bounds the buffer; events beyond it are dropped.
const maxPending = 2048

// New returns a recorder that writes as component on host.
func New(w Writer, component, host string, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{writer: w, component: component, host: host, log: log, clock: time.Now}
}

// Event records one event; typ is corev1.EventTypeNormal or Warning.
func (r *Recorder) Event(ref Ref, typ, reason, message string) {
	if r == nil || ref.Name == "" {
		return
	}
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) >= maxPending {
		r.dropped++
		return
	}
	r.seq++
	ns := ref.Namespace
	if ns == "" {
		ns = "default" // events about cluster-scoped objects, as Kubernetes does
	}
	t := metav1.NewTime(now)
	ev := &corev1.Event{
		InvolvedObject: corev1.ObjectReference{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, UID: typesUID(ref.UID)},
		Reason:         reason,
		Message:        message,
		Type:           typ,
		Count:          1,
		FirstTimestamp: t,
		LastTimestamp:  t,
		Source:         corev1.EventSource{Component: r.component, Host: r.host},
	}
	ev.Name = fmt.Sprintf("%s.%x%s", ref.Name, now.UnixNano(), strconv.FormatUint(r.seq, 36))
	ev.Namespace = ns
	o, err := object.FromTyped("Event", ev)
	if err != nil {
		r.log.Debug("event", "err", err)
		return
	}
	o.ApiVersion = "v1"
	r.pending = append(r.pending, o)
}

// Run writes buffered events every interval until ctx ends.
func (r *Recorder) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.Flush(ctx)
		}
	}
}

// Flush writes what is buffered now, in one transaction.
func (r *Recorder) Flush(ctx context.Context) {
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	req := &pb.TxnRequest{}
	for _, o := range batch {
		req.Ops = append(req.Ops, &pb.Op{Type: pb.Op_PUT, Object: o, MustCreate: true})
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.writer.Txn(cctx, req); err != nil {
		r.log.Debug("write events, dropped", "events", len(batch), "err", err)
	}
}

func typesUID(s string) types.UID { return types.UID(s) }
