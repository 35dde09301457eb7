package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Both ends of fetching an image from a peer agent: the agent that holds
// it serves ResolveImage and ReadContent from its runtime; ImagePeer is
// the client the fetching agent's runtime reads through. The fetcher checks
// every blob against its digest, so the serving side trusts nobody and
// is trusted by nobody.

// contentChunk is the size of the pieces ReadContent streams a blob in.
const contentChunk = 256 << 10

// ResolveImage returns the target descriptor of an image this agent holds,
// looked up as written and normalized.
func (s *Server) ResolveImage(ctx context.Context, req *pb.ResolveImageRequest) (*pb.ImageInfo, error) {
	st, err := s.images("resolve image")
	if err != nil {
		return nil, err
	}
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "resolve image: a name is required")
	}
	name, target, err := st.ResolveImage(ctx, req.GetName())
	if err != nil {
		return nil, toStatus(fmt.Errorf("resolve image on %s: %w", s.cfg.Node, err))
	}
	return imageInfo(name, target), nil
}

// ReadContent streams a blob of this agent's content store from an offset.
func (s *Server) ReadContent(req *pb.ReadContentRequest, stream grpc.ServerStreamingServer[pb.ContentChunk]) error {
	st, err := s.images("read content")
	if err != nil {
		return err
	}
	dgst, err := digest.Parse(req.GetDigest())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "read content: digest %q: %v", req.GetDigest(), err)
	}
	if req.GetOffset() < 0 {
		return status.Errorf(codes.InvalidArgument, "read content %s: offset %d: must not be negative", dgst, req.GetOffset())
	}
	r, err := st.ReadContent(stream.Context(), dgst, req.GetOffset())
	if err != nil {
		return toStatus(fmt.Errorf("read content on %s: %w", s.cfg.Node, err))
	}
	defer r.Close()
	for {
		// A fresh buffer each time: a sent message must not change.
		buf := make([]byte, contentChunk)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&pb.ContentChunk{Data: buf[:n]}); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return toStatus(fmt.Errorf("read content %s on %s: %w", dgst, s.cfg.Node, err))
		}
	}
}

// AgentClient returns a client of the agent whose gRPC API is at addr,
// over the connections the server keeps to other agents (Close closes
// them).
func (s *Server) AgentClient(addr string) (pb.ShoalClient, error) {
	return s.fwd.client(addr)
}

// ImagePeer fetches images from the agent of Node through Client: the
// client side of ResolveImage and ReadContent, as the containerd driver's
// Peer.
type ImagePeer struct {
	Node   string
	Client pb.ShoalClient
}

// Name returns the node's name.
func (p ImagePeer) Name() string { return p.Node }

// ResolveImage asks the agent for the target of the image name. An image
// the agent does not hold is an error with gRPC code NotFound.
func (p ImagePeer) ResolveImage(ctx context.Context, name string) (ocispec.Descriptor, error) {
	info, err := p.Client.ResolveImage(ctx, &pb.ResolveImageRequest{Name: name})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("node %s: %w", p.Node, err)
	}
	return ocispec.Descriptor{MediaType: info.GetMediaType(), Digest: digest.Digest(info.GetDigest()), Size: info.GetSize()}, nil
}

// ReadContent streams the blob dgst from the agent, from offset on; the
// stream ends when the reader is closed.
func (p ImagePeer) ReadContent(ctx context.Context, dgst digest.Digest, offset int64) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := p.Client.ReadContent(ctx, &pb.ReadContentRequest{Digest: dgst.String(), Offset: offset})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("node %s: %w", p.Node, err)
	}
	return &contentReader{node: p.Node, recv: stream.Recv, cancel: cancel}, nil
}

// contentReader reads the chunks of a ReadContent stream as one stream of
// bytes.
type contentReader struct {
	node   string
	recv   func() (*pb.ContentChunk, error)
	cancel context.CancelFunc
	buf    []byte // what is left of the last chunk
}

func (r *contentReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		c, err := r.recv()
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		if err != nil {
			return 0, fmt.Errorf("node %s: %w", r.node, err)
		}
		r.buf = c.GetData()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *contentReader) Close() error {
	r.cancel()
	return nil
}
