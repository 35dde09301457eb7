package apiserver

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// PodIO serves logs and exec for pods running on this agent.
type PodIO interface {
	Logs(ctx context.Context, namespace, pod, container string, follow, previous bool, tailLines int64, send func([]byte) error) error
	Exec(ctx context.Context, namespace, pod, container string, cmd []string, stdin []byte, stdout, stderr func([]byte) error) (int, error)
}

// podPlacement is what Logs and Exec need of a stored pod.
type podPlacement struct {
	Spec struct {
		NodeName   string `json:"nodeName"`
		Containers []struct {
			Name string `json:"name"`
		} `json:"containers"`
	} `json:"spec"`
}

// locatePod finds the pod's node and resolves an empty container name when
// the pod has exactly one.
func (s *Server) locatePod(namespace, name, container string) (node, resolved string, err error) {
	if namespace == "" {
		namespace = "default"
	}
	o, _ := s.cfg.Raft.Store().Get("Pod", namespace, name)
	if o == nil {
		return "", "", status.Errorf(codes.NotFound, "pods %q not found in namespace %q", name, namespace)
	}
	var p podPlacement
	if err := json.Unmarshal(o.GetSpec(), &p); err != nil {
		return "", "", status.Errorf(codes.Internal, "pod %s/%s: %v", namespace, name, err)
	}
	if p.Spec.NodeName == "" {
		return "", "", status.Errorf(codes.FailedPrecondition, "pod %q is not scheduled to a node yet", name)
	}
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
		if c.Name == container {
			resolved = c.Name
		}
	}
	switch {
	case container == "" && len(names) == 1:
		resolved = names[0]
	case container == "":
		return "", "", status.Errorf(codes.InvalidArgument, "pod %q has %d containers %v: choose one with -c", name, len(names), names)
	case resolved == "":
		return "", "", status.Errorf(codes.InvalidArgument, "container %q is not in pod %q (containers: %v)", container, name, names)
	}
	return p.Spec.NodeName, resolved, nil
}

// remote connects to the agent running a pod elsewhere; a call already
// forwarded once is refused rather than sent on.
func (s *Server) remote(ctx context.Context, node, pod string) (pb.ShoalClient, error) {
	if isForwarded(ctx) {
		return nil, status.Errorf(codes.FailedPrecondition, "pod %q runs on %s, not here", pod, node)
	}
	return s.nodeClient(node)
}

// nodeClient connects to the agent of a node, from its gossip facts.
func (s *Server) nodeClient(node string) (pb.ShoalClient, error) {
	for _, m := range s.cfg.Members.Members() {
		if m.Name == node {
			if !m.IsAlive() || m.Meta.GetGrpcAddress() == "" {
				return nil, status.Errorf(codes.Unavailable, "node %s is %s: its pods' logs and exec are out of reach", node, m.Status)
			}
			return s.fwd.client(m.Meta.GetGrpcAddress())
		}
	}
	return nil, status.Errorf(codes.Unavailable, "node %s is unknown to gossip", node)
}

// Logs streams a container's log from the agent that runs it.
func (s *Server) Logs(req *pb.LogsRequest, stream grpc.ServerStreamingServer[pb.LogChunk]) error {
	node, container, err := s.locatePod(req.GetNamespace(), req.GetPod(), req.GetContainer())
	if err != nil {
		return err
	}
	ctx := stream.Context()
	if node != s.cfg.Node {
		c, err := s.remote(ctx, node, req.GetPod())
		if err != nil {
			return err
		}
		in, err := c.Logs(forwardedContext(ctx, s.cfg.Node), proxyRequest(req, container))
		if err != nil {
			return err
		}
		return relay(in.Recv, stream.Send)
	}
	if s.cfg.PodIO == nil {
		return status.Error(codes.Unimplemented, "this agent runs no pods")
	}
	err = s.cfg.PodIO.Logs(ctx, namespaceOr(req.GetNamespace()), req.GetPod(), container, req.GetFollow(), req.GetPrevious(), req.GetTailLines(),
		func(b []byte) error { return stream.Send(&pb.LogChunk{Data: b}) })
	return toStatus(err)
}

// Exec runs a command in a container on the agent that runs it.
func (s *Server) Exec(req *pb.ExecRequest, stream grpc.ServerStreamingServer[pb.ExecOutput]) error {
	if len(req.GetCommand()) == 0 {
		return status.Error(codes.InvalidArgument, "exec: a command is required")
	}
	node, container, err := s.locatePod(req.GetNamespace(), req.GetPod(), req.GetContainer())
	if err != nil {
		return err
	}
	ctx := stream.Context()
	if node != s.cfg.Node {
		c, err := s.remote(ctx, node, req.GetPod())
		if err != nil {
			return err
		}
		fwd := &pb.ExecRequest{Namespace: req.GetNamespace(), Pod: req.GetPod(), Container: container, Command: req.GetCommand(), Stdin: req.GetStdin()}
		in, err := c.Exec(forwardedContext(ctx, s.cfg.Node), fwd)
		if err != nil {
			return err
		}
		return relay(in.Recv, stream.Send)
	}
	if s.cfg.PodIO == nil {
		return status.Error(codes.Unimplemented, "this agent runs no pods")
	}
	code, err := s.cfg.PodIO.Exec(ctx, namespaceOr(req.GetNamespace()), req.GetPod(), container, req.GetCommand(), req.GetStdin(),
		func(b []byte) error { return stream.Send(&pb.ExecOutput{Stdout: b}) },
		func(b []byte) error { return stream.Send(&pb.ExecOutput{Stderr: b}) })
	if err != nil {
		return toStatus(fmt.Errorf("exec in %s/%s: %w", req.GetPod(), container, err))
	}
	return stream.Send(&pb.ExecOutput{Exited: true, ExitCode: int32(code)})
}

// relay copies a proxied stream to the caller until it ends.
func relay[T any](recv func() (T, error), send func(T) error) error {
	for {
		m, err := recv()
		if err != nil {
			return endOfStream(err)
		}
		if err := send(m); err != nil {
			return err
		}
	}
}

func proxyRequest(req *pb.LogsRequest, container string) *pb.LogsRequest {
	return &pb.LogsRequest{Namespace: req.GetNamespace(), Pod: req.GetPod(), Container: container,
		Follow: req.GetFollow(), Previous: req.GetPrevious(), TailLines: req.GetTailLines()}
}

func namespaceOr(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// SetPodIO installs the local pod logs and exec server after construction
// (the kubelet needs the server as its status writer first).
func (s *Server) SetPodIO(p PodIO) { s.cfg.PodIO = p }
