package apiserver

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// ImageLoader imports image archives into the node's runtime (the
// containerd driver).
type ImageLoader interface {
	ImportImage(ctx context.Context, r io.Reader) ([]string, error)
}

// SetImages sets what LoadImage imports into (nil: this agent's runtime
// has no images). Call it before serving.
func (s *Server) SetImages(l ImageLoader) { s.cfg.Images = l }

// LoadImage streams an archive from the client into the runtime of this
// agent. The archive is checked by the runtime (every blob against its
// digest) before anything is kept.
func (s *Server) LoadImage(stream grpc.ClientStreamingServer[pb.ImageChunk, pb.LoadImageResponse]) error {
	l := s.cfg.Images
	if l == nil {
		return status.Error(codes.FailedPrecondition, "image load: this agent's runtime has no images (start it with --runtime containerd)")
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
