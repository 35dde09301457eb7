package apiserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// topTimeout bounds how long Top waits for the other agents.
const topTimeout = 5 * time.Second

// UsageSource reports what the pods of this agent use (the kubelet).
type UsageSource interface {
	// Usage returns the latest usage of the pods on this node, or why
	// there is none (not sampled yet, a runtime that cannot measure).
	Usage() ([]*pb.PodUsage, error)
}

// TopSource is what Top reports for this agent: its pods' usage and the
// node's allocatable capacity that usage is a share of.
type TopSource struct {
	Usage                  UsageSource // nil: this agent reports no usage
	AllocatableCPUMillis   int64
	AllocatableMemoryBytes int64
}

// SetUsage sets what Top reports for this agent: u's pods, against
// cpuMillis and memoryBytes of allocatable capacity. Call it before
// serving.
func (s *Server) SetUsage(u UsageSource, cpuMillis, memoryBytes int64) {
	s.cfg.Top = TopSource{Usage: u, AllocatableCPUMillis: cpuMillis, AllocatableMemoryBytes: memoryBytes}
}

// Top reports the CPU and memory use of pods and nodes: with local this
// agent's alone, otherwise every live member's, asked concurrently and
// merged; a node that does not answer within topTimeout (or the caller's
// deadline) is listed with its error. A call forwarded by another agent
// is always answered locally, so asking never loops.
func (s *Server) Top(ctx context.Context, req *pb.TopRequest) (*pb.TopResponse, error) {
	if req.GetLocal() || isForwarded(ctx) {
		return s.localTop(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, topTimeout)
	defer cancel()
	// This agent answers for itself even if gossip does not list it.
	replies := []nodeTop{{node: s.cfg.Node, resp: s.localTop()}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range s.cfg.Members.Members() {
		switch {
		case m.Name == s.cfg.Node:
			continue
		case m.Status == gossip.StatusLeft:
			continue // gone on purpose
		case !m.IsAlive():
			mu.Lock()
			replies = append(replies, nodeTop{node: m.Name, err: fmt.Errorf("node is %s", m.Status)})
			mu.Unlock()
		default:
			wg.Go(func() {
				resp, err := s.remoteTop(ctx, m.Name)
				mu.Lock()
				replies = append(replies, nodeTop{node: m.Name, resp: resp, err: err})
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	return mergeTop(replies), nil
}

// remoteTop asks one other agent for its own usage.
func (s *Server) remoteTop(ctx context.Context, node string) (*pb.TopResponse, error) {
	c, err := s.nodeClient(node)
	if err != nil {
		return nil, err
	}
	resp, err := c.Top(forwardedContext(ctx, s.cfg.Node), &pb.TopRequest{Local: true})
	if err != nil && (status.Code(err) == codes.DeadlineExceeded || ctx.Err() != nil) {
		return nil, errors.New("no answer before the deadline")
	}
	return resp, err
}

// localTop is this agent's answer: its pods and one NodeUsage, their sum,
// or the reason there is no usage to report.
func (s *Server) localTop() *pb.TopResponse {
	top := s.cfg.Top
	n := &pb.NodeUsage{Node: s.cfg.Node, CpuAllocatableMillis: top.AllocatableCPUMillis, MemoryAllocatableBytes: top.AllocatableMemoryBytes}
	resp := &pb.TopResponse{Nodes: []*pb.NodeUsage{n}}
	if top.Usage == nil {
		n.Error = "this agent reports no usage"
		return resp
	}
	pods, err := top.Usage.Usage()
	if err != nil {
		n.Error = err.Error()
		return resp
	}
	for _, p := range pods {
		p.Node = s.cfg.Node
		for _, c := range p.GetContainers() {
			n.CpuMillis += c.GetCpuMillis()
			n.MemoryBytes += c.GetMemoryBytes()
		}
	}
	resp.Pods = pods
	return resp
}

// nodeTop is one node's answer to Top, or why there is none.
type nodeTop struct {
	node string
	resp *pb.TopResponse
	err  error
}

// mergeTop combines the nodes' answers: every pod once, sorted by
// namespace, name and node; one NodeUsage per node, sorted by name, with
// the error of a node that failed or answered without one.
func mergeTop(replies []nodeTop) *pb.TopResponse {
	out := &pb.TopResponse{}
	for _, r := range replies {
		if r.err != nil {
			out.Nodes = append(out.Nodes, &pb.NodeUsage{Node: r.node, Error: errorText(r.err)})
			continue
		}
		found := false
		for _, n := range r.resp.GetNodes() {
			if n.GetNode() == r.node {
				found = true
				out.Nodes = append(out.Nodes, n)
			}
		}
		if !found {
			out.Nodes = append(out.Nodes, &pb.NodeUsage{Node: r.node, Error: "the agent reported no usage for its node"})
		}
		for _, p := range r.resp.GetPods() {
			if p.GetNode() == "" {
				p.Node = r.node
			}
			out.Pods = append(out.Pods, p)
		}
	}
	slices.SortFunc(out.Pods, func(a, b *pb.PodUsage) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()), cmp.Compare(a.GetNode(), b.GetNode()))
	})
	slices.SortFunc(out.Nodes, func(a, b *pb.NodeUsage) int { return cmp.Compare(a.GetNode(), b.GetNode()) })
	return out
}

// errorText is err as a user reads it: a gRPC status's message alone.
func errorText(err error) string {
	if st, ok := status.FromError(err); ok {
		msg := st.Message()
		switch st.Code() {
		case codes.Unimplemented:
			return "the agent does not serve top (an older version?)"
		case codes.Unavailable:
			if i := strings.LastIndex(msg, "connect: "); i >= 0 {
				return "unreachable: " + strings.TrimRight(msg[i+len("connect: "):], `"`)
			}
		}
		return msg
	}
	return err.Error()
}
