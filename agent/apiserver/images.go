package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// ImageStore is what the image API needs of this agent's runtime (the
// containerd driver): archives to import, and the images and blobs it
// holds, for `shoal image ls` and for peers that fetch an image from here.
type ImageStore interface {
	// ImportImage loads an image archive and returns the names it held.
	ImportImage(ctx context.Context, r io.Reader) ([]string, error)
	// ListImages returns the target of every image, by name.
	ListImages(ctx context.Context) (map[string]ocispec.Descriptor, error)
	// ResolveImage returns the name and target of an image, looked up as
	// written and normalized; an error wrapping errdefs.ErrNotFound when
	// there is none.
	ResolveImage(ctx context.Context, name string) (string, ocispec.Descriptor, error)
	// ReadContent reads a blob from offset on; errdefs.ErrNotFound when it
	// is not there, errdefs.ErrInvalidArgument for an offset outside it.
	ReadContent(ctx context.Context, dgst digest.Digest, offset int64) (io.ReadCloser, error)
}

// ImageSizer is implemented by runtimes that can tell how many bytes of
// content an image holds on this node (image ls shows it).
type ImageSizer interface {
	ImageSize(ctx context.Context, name string) (int64, error)
}

// SetImages sets the runtime the image calls serve (nil: this agent's
// runtime has no images). Call it before serving.
func (s *Server) SetImages(st ImageStore) { s.cfg.Images = st }

// images returns the runtime's images, or why the call cannot be served.
func (s *Server) images(what string) (ImageStore, error) {
	if s.cfg.Images == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: the runtime of agent %s has no images (start it with --runtime containerd)", what, s.cfg.Node)
	}
	return s.cfg.Images, nil
}

// LoadImage streams an archive from the client into the runtime of this
// agent. The archive is checked by the runtime (every blob against its
// digest) before anything is kept.
func (s *Server) LoadImage(stream grpc.ClientStreamingServer[pb.ImageChunk, pb.LoadImageResponse]) error {
	l, err := s.images("image load")
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	var n atomic.Int64
	go func() {
		for {
			c, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				_ = pw.Close()
				return
			}
			if err != nil {
				_ = pw.CloseWithError(err)
				return
			}
			n.Add(int64(len(c.GetData())))
			if _, err := pw.Write(c.GetData()); err != nil {
				return // the reader gave up; its error is returned below
			}
		}
	}()
	names, err := l.ImportImage(stream.Context(), pr)
	_ = pr.CloseWithError(errors.New("import finished"))
	if err != nil {
		return status.Error(codes.InvalidArgument, "image load: "+err.Error())
	}
	s.log.Info("images loaded", "images", names, "bytes", n.Load())
	return stream.SendAndClose(&pb.LoadImageResponse{Images: names, Node: s.cfg.Node, Bytes: n.Load()})
}

// listImagesTimeout bounds how long ListImages waits for the other agents.
const listImagesTimeout = 5 * time.Second

// ListImages lists the images of this agent, or of every agent: the alive
// members are asked at once (with local set, so they do not ask on) and
// each node gets one entry, with an error for a node that did not answer.
// A dead member is listed with the reason it was not asked; one that left
// is not listed.
func (s *Server) ListImages(ctx context.Context, req *pb.ListImagesRequest) (*pb.ListImagesResponse, error) {
	if req.GetLocal() {
		imgs, err := s.localImages(ctx)
		if err != nil {
			return nil, err
		}
		return &pb.ListImagesResponse{Nodes: []*pb.NodeImages{{Node: s.cfg.Node, Images: imgs}}}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, listImagesTimeout)
	defer cancel()
	members := s.cfg.Members.Members()
	nodes := make([]*pb.NodeImages, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		addr := m.Meta.GetGrpcAddress()
		switch {
		case m.Name == s.cfg.Node || m.Status == gossip.StatusLeft:
		case !m.IsAlive():
			nodes[i] = &pb.NodeImages{Node: m.Name, Error: fmt.Sprintf("not asked: the node is %s", m.Status)}
		case addr == "":
			nodes[i] = &pb.NodeImages{Node: m.Name, Error: "not asked: the node advertises no gRPC address"}
		default:
			wg.Go(func() { nodes[i] = s.remoteImages(ctx, m.Name, addr) })
		}
	}
	self := &pb.NodeImages{Node: s.cfg.Node}
	if imgs, err := s.localImages(ctx); err != nil {
		self.Error = status.Convert(err).Message()
	} else {
		self.Images = imgs
	}
	wg.Wait()
	out := []*pb.NodeImages{self}
	for _, n := range nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *pb.NodeImages) int { return strings.Compare(a.GetNode(), b.GetNode()) })
	return &pb.ListImagesResponse{Nodes: out}, nil
}

// localImages lists this agent's images, sorted by name.
func (s *Server) localImages(ctx context.Context) ([]*pb.ImageInfo, error) {
	st, err := s.images("list images")
	if err != nil {
		return nil, err
	}
	imgs, err := st.ListImages(ctx)
	if err != nil {
		return nil, toStatus(fmt.Errorf("list images of %s: %w", s.cfg.Node, err))
	}
	out := make([]*pb.ImageInfo, 0, len(imgs))
	sizer, _ := st.(ImageSizer)
	for name, target := range imgs {
		info := imageInfo(name, target)
		if sizer != nil {
			if n, err := sizer.ImageSize(ctx, name); err == nil {
				info.ContentSize = n
			}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b *pb.ImageInfo) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

// remoteImages asks the agent of node at addr for its own images.
func (s *Server) remoteImages(ctx context.Context, node, addr string) *pb.NodeImages {
	c, err := s.fwd.client(addr)
	if err == nil {
		var resp *pb.ListImagesResponse
		resp, err = c.ListImages(ctx, &pb.ListImagesRequest{Local: true})
		if err == nil {
			out := &pb.NodeImages{Node: node}
			for _, n := range resp.GetNodes() {
				out.Images = append(out.Images, n.GetImages()...)
			}
			return out
		}
	}
	return &pb.NodeImages{Node: node, Error: status.Convert(err).Message()}
}

func imageInfo(name string, target ocispec.Descriptor) *pb.ImageInfo {
	return &pb.ImageInfo{Name: name, MediaType: target.MediaType, Digest: target.Digest.String(), Size: target.Size}
}
