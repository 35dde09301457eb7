// Package sched will own pod placement: a pure function from a snapshot of
// nodes and pods to a placement, and the rendezvous hashing that picks the
// agent claiming each pending pod. It must not import agent or cmd.
//
// It holds no code yet: placement arrives with the workloads capability.
package sched
