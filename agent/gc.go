package agent

import (
	"cmp"
	"context"
	"slices"
	"time"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// collectGarbage deletes objects whose controlling owner is gone, as
// Kubernetes' garbage collector does in the background: deleting a
// Deployment removes its ReplicaSets, and those their pods.
func (a *Agent) collectGarbage(ctx context.Context) {
	store := a.node.Store()
	owners := map[string]bool{} // uid of every object that can own others
	for _, kind := range []string{"Deployment", "ReplicaSet"} {
		objs, _ := store.List(kind, "", nil)
		for _, o := range objs {
			owners[o.GetUid()] = true
		}
	}
	var ops []*pb.Op
	for _, kind := range []string{"ReplicaSet", "Pod"} {
		objs, _ := store.List(kind, "", nil)
		for _, o := range objs {
			for _, ref := range o.GetOwnerReferences() {
				if ref.GetController() && !owners[ref.GetUid()] {
					ops = append(ops, &pb.Op{Type: pb.Op_DELETE, ExpectRevision: o.GetResourceVersion(),
						Object: &pb.Object{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}})
					break
				}
			}
		}
	}
	ops = append(ops, expiredEvents(store.List, time.Now())...)
	if len(ops) == 0 {
		return
	}
	if _, err := a.api.Txn(ctx, &pb.TxnRequest{Ops: ops}); err != nil {
		a.log.Debug("garbage collection refused, will retry", "objects", len(ops), "err", err)
		return
	}
	a.log.Info("deleted objects whose owner is gone", "objects", len(ops))
}

// Events live an hour, and at most maxEventsPerNamespace per namespace, as
// Kubernetes keeps them.
const (
	eventTTL              = time.Hour
	maxEventsPerNamespace = 1000
)

// expiredEvents returns deletions for events past their TTL or beyond the
// newest maxEventsPerNamespace of their namespace.
func expiredEvents(list func(kind, ns string, match func(*pb.Object) bool) ([]*pb.Object, uint64), now time.Time) []*pb.Op {
	objs, _ := list("Event", "", nil)
	byNS := map[string][]*pb.Object{}
	for _, o := range objs {
		byNS[o.GetNamespace()] = append(byNS[o.GetNamespace()], o)
	}
	var ops []*pb.Op
	for _, evs := range byNS {
		slices.SortFunc(evs, func(x, y *pb.Object) int { return cmp.Compare(y.GetCreateTimeUnixNano(), x.GetCreateTimeUnixNano()) })
		for i, o := range evs {
			if i >= maxEventsPerNamespace || now.Sub(time.Unix(0, o.GetCreateTimeUnixNano())) > eventTTL {
				ops = append(ops, &pb.Op{Type: pb.Op_DELETE, ExpectRevision: o.GetResourceVersion(),
					Object: &pb.Object{Kind: "Event", Namespace: o.GetNamespace(), Name: o.GetName()}})
			}
		}
	}
	return ops
}
