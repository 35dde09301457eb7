package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/e2e/bench/internal/poll"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

const (
	podNamespace = "default"
	// runningLimit bounds one pod's apply-to-Running.
	runningLimit = 2 * time.Minute
)

// shoalSide starts pods through the agent and learns when they run from
// one watch on the bench's pods.
type shoalSide struct {
	env *env

	mu      sync.Mutex
	waiting map[string]chan time.Time // pod name -> when the watch saw it running
	dead    chan struct{}             // closed when the watch ends; err says why
	err     error
	stop    context.CancelFunc
	done    chan struct{}
}

// watch starts following the bench's pods from the current revision, so
// that no change after it is missed.
func (s *shoalSide) watch(ctx context.Context) error {
	conn := s.env.conn
	sel := podLabelKey + "=" + podLabelValue
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	list, err := conn.List(lctx, &pb.ListRequest{Kind: "Pod", Namespace: podNamespace, LabelSelector: sel})
	cancel()
	if err != nil {
		return fmt.Errorf("list pods: %w", conn.Explain(err))
	}
	wctx, stop := context.WithCancel(ctx)
	stream, err := conn.Watch(wctx, &pb.WatchRequest{Kind: "Pod", Namespace: podNamespace, LabelSelector: sel, FromRevision: list.GetRevision()})
	if err != nil {
		stop()
		return fmt.Errorf("watch pods: %w", conn.Explain(err))
	}
	s.waiting, s.dead, s.stop, s.done = map[string]chan time.Time{}, make(chan struct{}), stop, make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			ev, err := stream.Recv()
			now := time.Now()
			if err != nil {
				s.mu.Lock()
				s.err = conn.Explain(err)
				s.mu.Unlock()
				close(s.dead)
				return
			}
			if ev.GetType() == pb.WatchEvent_DELETED || !running(ev.GetObject()) {
				continue
			}
			s.mu.Lock()
			if ch, ok := s.waiting[ev.GetObject().GetName()]; ok {
				ch <- now
				delete(s.waiting, ev.GetObject().GetName())
			}
			s.mu.Unlock()
		}
	}()
	return nil
}

func (s *shoalSide) stopWatch() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// running reports whether a pod is in phase Running with its container
// running.
func running(o *pb.Object) bool {
	var st corev1.PodStatus
	return object.StatusOf(o, &st) == nil && st.Phase == corev1.PodRunning &&
		len(st.ContainerStatuses) == 1 && st.ContainerStatuses[0].State.Running != nil
}

func testPod(name string) (*pb.Object, error) {
	return object.FromTyped("Pod", &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: podNamespace, Labels: map[string]string{podLabelKey: podLabelValue}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: image, ImagePullPolicy: corev1.PullNever, Command: command,
		}}},
	})
}

// start creates the pod name in its own transaction and returns the time
// from the call until the watch delivered it running.
func (s *shoalSide) start(ctx context.Context, name string) (time.Duration, error) {
	o, err := testPod(name)
	if err != nil {
		return 0, err
	}
	ch := make(chan time.Time, 1)
	s.mu.Lock()
	s.waiting[name] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, name)
		s.mu.Unlock()
	}()
	s.env.podsMayBeRunning.Store(true)
	t := time.Now()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err = s.env.conn.Txn(cctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: o, MustCreate: true}}})
	cancel()
	if err != nil {
		return 0, fmt.Errorf("create pod %s: %w", name, s.env.conn.Explain(err))
	}
	select {
	case at := <-ch:
		return at.Sub(t), nil
	case <-s.dead:
		s.mu.Lock()
		defer s.mu.Unlock()
		return 0, fmt.Errorf("pod %s: the watch ended: %w", name, s.err)
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(runningLimit):
		return 0, fmt.Errorf("pod %s not running after %s", name, runningLimit)
	}
}

// parallel starts n pods with k in flight.
func (s *shoalSide) parallel(ctx context.Context, tag string, n, k int) (parallelRun, error) {
	return inParallel(ctx, n, k, func(ctx context.Context, i int) (time.Duration, error) {
		return s.start(ctx, fmt.Sprintf("shoal-%s-%03d", tag, i))
	})
}

// removeAll deletes the bench's pods in one transaction and waits until
// they are gone with their containers and network namespaces; it returns
// the time from the delete's call.
func (s *shoalSide) removeAll(ctx context.Context) (time.Duration, error) {
	e := s.env
	sel := podLabelKey + "=" + podLabelValue
	t := time.Now()
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	list, err := e.conn.List(lctx, &pb.ListRequest{Kind: "Pod", Namespace: podNamespace, LabelSelector: sel})
	cancel()
	if err != nil {
		return 0, fmt.Errorf("list pods: %w", e.conn.Explain(err))
	}
	if len(list.GetObjects()) > 0 {
		req := &pb.TxnRequest{}
		for _, o := range list.GetObjects() {
			req.Ops = append(req.Ops, &pb.Op{Type: pb.Op_DELETE, Object: &pb.Object{Kind: "Pod", Namespace: podNamespace, Name: o.GetName()}})
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err = e.conn.Txn(cctx, req)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("delete %d pods: %w", len(req.Ops), e.conn.Explain(err))
		}
	}
	err = poll.UntilEvery(ctx, cleanupLimit, 2*time.Second, 20*time.Millisecond, func(ctx context.Context) error {
		list, err := e.conn.List(ctx, &pb.ListRequest{Kind: "Pod", Namespace: podNamespace, LabelSelector: sel})
		if err != nil {
			return e.conn.Explain(err)
		}
		ctrs, err := e.shoalClient.Containers(ctx)
		if err != nil {
			return fmt.Errorf("list the agent's containers: %w", err)
		}
		mounts, err := mountsUnder(e.agentData)
		if err != nil {
			return err
		}
		if n := len(list.GetObjects()); n+len(ctrs)+len(mounts) > 0 {
			var names []string
			for _, o := range list.GetObjects() {
				names = append(names, o.GetName())
			}
			return fmt.Errorf("%d pods left (%s), %d containers, %d network namespace mounts", n, idList(names), len(ctrs), len(mounts))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pods not gone: %w", err)
	}
	return time.Since(t), nil
}

// waitNodeReady waits until the agent's Node is Ready and namespace
// default exists, read linearizably.
func waitNodeReady(ctx context.Context, conn *client.Conn) error {
	return poll.Until(ctx, formLimit, func(ctx context.Context) error {
		ro := &pb.ReadOptions{Linearizable: true}
		if _, err := conn.Get(ctx, &pb.GetRequest{Kind: "Namespace", Name: podNamespace, Read: ro}); err != nil {
			return fmt.Errorf("namespace %s: %w", podNamespace, conn.Explain(err))
		}
		list, err := conn.List(ctx, &pb.ListRequest{Kind: "Node", Read: ro})
		if err != nil {
			return fmt.Errorf("list nodes: %w", conn.Explain(err))
		}
		for _, o := range list.GetObjects() {
			var n corev1.Node
			if object.Decode(o, &n) != nil {
				continue
			}
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		return errors.New("no Node Ready yet")
	})
}

// idList is for messages: the first few of ids.
func idList(ids []string) string {
	if len(ids) > 5 {
		return strings.Join(ids[:5], " ") + fmt.Sprintf(" and %d more", len(ids)-5)
	}
	return strings.Join(ids, " ")
}
