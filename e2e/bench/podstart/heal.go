package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/e2e/bench/internal/poll"
	"github.com/shoal-dev/shoal/e2e/bench/internal/stats"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

const (
	healReplicas = 6
	healLimit    = 2 * time.Minute
	healPoll     = 100 * time.Millisecond
)

// healResult is one SIGKILL of an agent under a Deployment.
type healResult struct {
	notReady time.Duration // SIGKILL to its Node NotReady on n1's replica
	healed   time.Duration // SIGKILL to healReplicas Ready pods on the survivors
	lost     int           // Ready pods the killed agent held
}

// heal runs a Deployment of healReplicas through n1, waits until all are
// Ready, SIGKILLs the last agent and measures, on n1's replica polled every
// healPoll, when that agent's Node turns NotReady and when healReplicas
// pods are Ready on the survivors again. The agents run with default
// settings (pod eviction timeout 10 s).
func (c *cluster) heal(ctx context.Context, out io.Writer) (healResult, error) {
	var r healResult
	conn := c.conns[0]
	replicas := int32(healReplicas)
	labels := map[string]string{"app": "heal"}
	d, err := object.FromTyped("Deployment", &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "heal", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shoal-testapp",
					Command: []string{"shoal-testapp", "sleep"}}}}}},
	})
	if err != nil {
		return r, err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err = conn.Txn(cctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: d, MustCreate: true}}})
	cancel()
	if err != nil {
		return r, fmt.Errorf("apply deployment heal: %w", err)
	}
	victim := fmt.Sprintf("n%d", agents)
	if err := poll.Until(ctx, healLimit, func(ctx context.Context) error {
		ready, err := readyPods(ctx, c, "")
		if err != nil {
			return err
		}
		if ready[""] != healReplicas || ready[victim] == 0 {
			return fmt.Errorf("%d of %d pods Ready, %d on %s", ready[""], healReplicas, ready[victim], victim)
		}
		r.lost = ready[victim]
		return nil
	}); err != nil {
		return r, err
	}
	fmt.Fprintf(out, "  heal: deployment of %d Ready, %d on %s; SIGKILL %s\n", healReplicas, r.lost, victim, victim)
	killed := time.Now()
	if err := c.procs[agents-1].Sigkill(); err != nil {
		return r, err
	}
	deadline := time.Now().Add(healLimit)
	for r.healed == 0 {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("after %s: %d pods not Ready on the survivors", healLimit, healReplicas)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ready, err := readyPods(pctx, c, victim)
		var nodeReady bool
		if err == nil {
			nodeReady, err = nodeIsReady(pctx, c, victim)
		}
		cancel()
		now := time.Now()
		if err == nil {
			if !nodeReady && r.notReady == 0 {
				r.notReady = now.Sub(killed)
			}
			if ready[""] >= healReplicas {
				r.healed = now.Sub(killed)
			}
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(healPoll):
		}
	}
	fmt.Fprintf(out, "  heal: %s NotReady after %s; %d pods Ready on the survivors after %s\n",
		victim, stats.Ms(r.notReady), healReplicas, stats.Ms(r.healed))
	return r, nil
}

// readyPods counts the heal pods with condition Ready on n1's replica, by
// node and in all under "", leaving out those on node skip.
func readyPods(ctx context.Context, c *cluster, skip string) (map[string]int, error) {
	list, err := c.conns[0].List(ctx, &pb.ListRequest{Kind: "Pod", Namespace: "default"})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, o := range list.GetObjects() {
		if !strings.HasPrefix(o.GetName(), "heal-") {
			continue
		}
		var p corev1.Pod
		if object.Decode(o, &p) != nil || p.Spec.NodeName == "" || p.Spec.NodeName == skip {
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.Status.Phase == corev1.PodRunning {
				out[p.Spec.NodeName]++
				out[""]++
			}
		}
	}
	return out, nil
}

func nodeIsReady(ctx context.Context, c *cluster, name string) (bool, error) {
	resp, err := c.conns[0].Get(ctx, &pb.GetRequest{Kind: "Node", Name: name})
	if err != nil {
		return false, err
	}
	var n corev1.Node
	if err := object.Decode(resp.GetObject(), &n); err != nil {
		return false, err
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue, nil
		}
	}
	return false, nil
}
