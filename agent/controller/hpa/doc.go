// Package hpa is the HorizontalPodAutoscaler controller (autoscaling/v2):
// from an HPA, the current scale and selector of its target (a Deployment or
// a ReplicaSet), the target's pods and a snapshot of what they use, it
// decides the target's replicas and writes them with the HPA's status.
//
// It follows Kubernetes' horizontal pod autoscaler and its replica
// calculator:
//
//   - For each metric (Resource cpu or memory, with a Utilization or an
//     AverageValue target) the proposal is
//     ceil(readyPods * currentUtilization / targetUtilization), and no change
//     when the ratio is within Config.Tolerance (10 %) of 1. Utilization is
//     the pods' summed usage over their summed requests, in percent,
//     rounded down; AverageValue divides the summed usage by the pods.
//   - Pods being deleted and Failed pods are left out. Pending pods, and for
//     cpu pods that are not Ready or whose Ready transition falls inside the
//     sampling window during their first Config.CPUInitializationPeriod
//     (5 min), are "unready"; Ready pods without a sample are "missing".
//     Both are left out of the first ratio. If that ratio asks to scale up,
//     missing and unready pods are then counted at 0 %; if it asks to scale
//     down, missing pods are counted at 100 % of their request (or at the
//     target when it is above 100 %; for AverageValue, at the target).
//     A decision that this second ratio reverses, or brings within the
//     tolerance, keeps the current replicas.
//   - The largest proposal over all metrics wins. If some metrics cannot be
//     computed and the others would scale down, nothing changes.
//   - Without spec.behavior, the recommendation is the highest of those of
//     the last Config.DownscaleStabilization (5 min), and one step grows the
//     target to at most max(2*current, 4). With spec.behavior, the
//     recommendation is held between the lowest of the scale-up window and
//     the highest of the scale-down window (defaults: 0 s and 5 min), then
//     limited by the policies of its direction over their periods (defaults:
//     up by 4 pods or 100 % per 15 s, whichever is more; down by 100 % per
//     15 s), selectPolicy Max, Min or Disabled.
//   - The result is clamped to minReplicas (default 1) and maxReplicas. A
//     target at 0 replicas is left alone (scaling disabled).
//
// The recent recommendations and scale events are Memory, which the caller
// keeps between syncs and hands back; this controller runs on the Raft
// leader and keeps it in memory there, so a leader change restarts the
// stabilization windows (the new leader first records the current replicas
// as a recommendation, as Kubernetes does for an HPA it has not seen).
//
// It is a pure function (see package controller for the contract): the
// usage snapshot and the time come in as values. A reconcile writes at most
// the target's spec.replicas (an Update carrying the resourceVersion it was
// computed from) and the HPA's status (UpdateStatus), and returns the
// Events to record on the HPA: SuccessfulRescale on every change of scale,
// and the warnings FailedGetScale, FailedGetResourceMetric and
// FailedComputeMetricsReplicas when a condition first reports the problem
// (not at every sync, as the Events are not aggregated).
package hpa
