package agent

import (
	"context"

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
	if len(ops) == 0 {
		return
	}
	if _, err := a.api.Txn(ctx, &pb.TxnRequest{Ops: ops}); err != nil {
		a.log.Debug("garbage collection refused, will retry", "objects", len(ops), "err", err)
		return
	}
	a.log.Info("deleted objects whose owner is gone", "objects", len(ops))
}
