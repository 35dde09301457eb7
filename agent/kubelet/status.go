package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// podStatus computes the Kubernetes status of a pod from the kubelet's view.
func (k *Kubelet) podStatus(p *podState, now time.Time) corev1.PodStatus {
	pod := p.pod
	old := pod.Status
	st := corev1.PodStatus{
		HostIP:  k.cfg.NodeIP,
		HostIPs: []corev1.HostIP{{IP: k.cfg.NodeIP}},
	}
	if ip := k.podIP(p); ip != "" && (p.ip != "" || k.network == nil) {
		st.PodIP, st.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	}
	if !p.startTime.IsZero() {
		t := metav1.NewTime(p.startTime)
		if old.StartTime != nil {
			t = *old.StartTime
		}
		st.StartTime = &t
	}
	allReady, running, created, succeeded, failed, restarting := true, 0, 0, 0, 0, 0
	for _, spec := range pod.Spec.Containers {
		c := p.containers[spec.Name]
		cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, ImageID: spec.Image}
		switch {
		case c != nil && c.starting:
			// Until the start returns, as Kubernetes says while it creates
			// the container (image pull included).
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			if c.attempt >= 0 { // a restart: the pod counts as running
				created++
				restarting++
				cs.LastTerminationState.Terminated = c.cur
				f := false
				cs.Started = &f
			}
		case c == nil || c.attempt < 0:
			reason, msg := "ContainerCreating", ""
			if c != nil && c.waiting != "" {
				reason, msg = c.waiting, c.waitingMsg
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		case c.running:
			created++
			running++
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
			started := c.started
			cs.Started = &started
			cs.Ready = c.ready && c.started && !c.stopping
		default:
			created++
			if !p.terminal && shouldRestart(pod.Spec.RestartPolicy, c.cur) {
				restarting++
				reason := c.waiting
				if reason == "" {
					reason = "ContainerCreating"
				}
				cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: c.waitingMsg}
				cs.LastTerminationState.Terminated = c.cur
			} else {
				cs.State.Terminated = c.cur
				if c.cur != nil && c.cur.ExitCode == 0 {
					succeeded++
				} else {
					failed++
				}
			}
			f := false
			cs.Started = &f
		}
		if c != nil {
			cs.RestartCount = int32(max(c.attempt, 0))
			if cs.LastTerminationState.Terminated == nil && c.last != nil {
				cs.LastTerminationState.Terminated = c.last
			}
			cs.ContainerID = "shoal://" + c.id().String()
		}
		if !cs.Ready {
			allReady = false
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	n := len(pod.Spec.Containers)
	switch {
	case p.terminal:
		st.Phase = old.Phase
		st.Reason, st.Message = old.Reason, old.Message
	case created < n:
		st.Phase = corev1.PodPending
	case running > 0 || restarting > 0:
		st.Phase = corev1.PodRunning
	case succeeded == n:
		st.Phase = corev1.PodSucceeded
	case failed > 0:
		st.Phase = corev1.PodFailed
	default:
		st.Phase = corev1.PodRunning
	}
	if st.Phase != corev1.PodRunning {
		allReady = false
	}
	st.Conditions = conditions(old.Conditions, now, map[corev1.PodConditionType]bool{
		corev1.PodScheduled:    true,
		corev1.PodInitialized:  true,
		corev1.ContainersReady: allReady,
		corev1.PodReady:        allReady,
	})
	return st
}

// conditions builds the pod conditions, keeping a condition's transition
// time while its status does not change.
func conditions(old []corev1.PodCondition, now time.Time, want map[corev1.PodConditionType]bool) []corev1.PodCondition {
	prev := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range old {
		prev[c.Type] = c
	}
	var out []corev1.PodCondition
	for _, t := range []corev1.PodConditionType{corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		s := corev1.ConditionFalse
		if want[t] {
			s = corev1.ConditionTrue
		}
		c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.NewTime(now)}
		if p, ok := prev[t]; ok && p.Status == s {
			c.LastTransitionTime = p.LastTransitionTime
		}
		if s == corev1.ConditionFalse && (t == corev1.PodReady || t == corev1.ContainersReady) {
			c.Reason = "ContainersNotReady"
		}
		out = append(out, c)
	}
	return out
}

// queueStatusLocked queues a status write when the pod's status changed.
func (k *Kubelet) queueStatusLocked(p *podState, now time.Time) {
	if p.removing || p.pod == nil || p.pod.Name == "" {
		return
	}
	if p.netting && p.anyRunning() {
		// Adopted after an agent restart, its address is known again
		// once the network setup in flight returns: a status now would
		// drop the running pod's IP.
		return
	}
	st := k.podStatus(p, now)
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	k.statusMu.Lock()
	defer k.statusMu.Unlock()
	if k.written[p.uid] == string(b) {
		return
	}
	// Compare with what the store holds, so a restarted kubelet does not
	// rewrite an unchanged status.
	if stored, err := json.Marshal(p.pod.Status); err == nil && string(stored) == string(b) {
		k.written[p.uid] = string(b)
		return
	}
	k.pending[p.uid] = &pb.Object{Kind: "Pod", Namespace: p.namespace, Name: p.name, Status: b}
	k.written[p.uid] = string(b)
	select {
	case k.statusSig <- struct{}{}:
	default:
	}
}

// statusLoop writes queued statuses, at most one transaction per interval:
// the first change after a quiet spell goes out at once (a pod's first
// Running is what a user waits for), and the changes that come while a
// write is recent wait for the interval to pass and go out together.
func (k *Kubelet) statusLoop(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.statusSig:
		}
		if wait := k.cfg.StatusInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		k.flushStatus(ctx)
	}
}

func (k *Kubelet) flushStatus(ctx context.Context) {
	k.statusMu.Lock()
	batch := k.pending
	k.pending = map[string]*pb.Object{}
	k.statusMu.Unlock()
	var ops []*pb.Op
	var uids []string
	for uid, o := range batch {
		ops = append(ops, &pb.Op{Type: pb.Op_STATUS, Object: o})
		uids = append(uids, uid)
	}
	for len(ops) > 0 {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := k.cfg.Writer.Txn(wctx, &pb.TxnRequest{Ops: ops})
		cancel()
		if err == nil {
			return
		}
		if status.Code(err) == codes.NotFound {
			// A pod was deleted meanwhile: drop the write that names it.
			i := failedOp(err, ops)
			if i >= 0 {
				ops = append(ops[:i], ops[i+1:]...)
				uids = append(uids[:i], uids[i+1:]...)
				continue
			}
		}
		k.log.Warn("write pod status", "pods", len(ops), "err", err)
		// Forget what was written so the next sync queues it again.
		k.statusMu.Lock()
		for _, uid := range uids {
			delete(k.written, uid)
		}
		k.statusMu.Unlock()
		return
	}
}

// failedOp reads which op a refused transaction names ("op N (...): ...",
// see state.OpError).
func failedOp(err error, ops []*pb.Op) int {
	var i int
	if _, serr := fmt.Sscanf(status.Convert(err).Message(), "op %d", &i); serr != nil || i < 0 || i >= len(ops) {
		return -1
	}
	return i
}
