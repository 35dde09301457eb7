// Package controller holds what Shoal's reconcile loops share: the Write a
// reconcile returns, the Env it is given, and the helpers about owner
// references, selectors and pod state that every controller needs.
//
// Each controller lives in its own folder below this one (replicaset,
// deployment, nodelifecycle) and is a pure function from the desired and the
// observed objects to a list of writes. The contract every controller keeps:
//
//   - Pure: no goroutines, clocks, IO or randomness. Time and new names come
//     in through Env. Inputs are never modified; every Object in a Write is a
//     fresh copy the caller owns.
//   - At most one write per object per reconcile. Every Update, UpdateStatus
//     and Delete carries the resourceVersion it was computed from, so the
//     runner can apply each write as a compare-and-swap on its own, in any
//     order or in one transaction, and a stale decision is refused rather
//     than applied. When an object needs both a spec and a status change,
//     the controller makes one now and the other on the next reconcile,
//     deciding from what it then observes (as Kubernetes' node lifecycle
//     controller taints a node from its observed Ready condition).
//   - A reconcile describes the world its writes leave behind: the status it
//     writes counts the pods it creates, deletes and adopts in the same pass.
//     Applying the writes and reconciling again yields no writes, unless a
//     rule above needs a second pass (a burst cap, a spec-then-status pair);
//     each controller documents those. If one of its writes is refused, the
//     runner reconciles again and the status is corrected from fresh state.
//   - Created objects carry no uid, resourceVersion or creationTimestamp: the
//     store stamps them from the log entry.
//
// Some decisions depend on time passing with no write happening (a pod
// becomes available minReadySeconds after it turned ready, which lets a
// rolling update take its next step; a rollout exceeds its progress
// deadline; a dead node's pods are failed after the eviction timeout). The
// runner must reconcile again then; a periodic resync of a few seconds is
// enough.
//
// This package must not import the store, the runner or anything with IO;
// the runner imports it, never the other way round.
package controller
