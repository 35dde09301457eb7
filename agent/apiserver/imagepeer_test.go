package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// fakeImages is an ImageStore in memory.
type fakeImages struct {
	images  map[string]ocispec.Descriptor
	blobs   map[digest.Digest][]byte
	listErr error
}

func (f *fakeImages) ImportImage(context.Context, io.Reader) ([]string, error) {
	return nil, errors.New("not in this fake")
}

func (f *fakeImages) ListImages(context.Context) (map[string]ocispec.Descriptor, error) {
	return f.images, f.listErr
}

func (f *fakeImages) ResolveImage(_ context.Context, name string) (string, ocispec.Descriptor, error) {
	if d, ok := f.images[name]; ok {
		return name, d, nil
	}
	return "", ocispec.Descriptor{}, fmt.Errorf("image %s: %w", name, errdefs.ErrNotFound)
}

func (f *fakeImages) ReadContent(_ context.Context, dgst digest.Digest, offset int64) (io.ReadCloser, error) {
	b, ok := f.blobs[dgst]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", dgst, errdefs.ErrNotFound)
	}
	if offset > int64(len(b)) {
		return nil, fmt.Errorf("blob %s: offset %d: %w", dgst, offset, errdefs.ErrInvalidArgument)
	}
	return io.NopCloser(bytes.NewReader(b[offset:])), nil
}

// imageServer is a server of node with the given members and images.
func imageServer(t *testing.T, node string, members Members, images ImageStore) *Server {
	t.Helper()
	s := &Server{cfg: Config{Node: node, Members: members, Images: images}, log: slog.New(slog.DiscardHandler)}
	s.fwd = newForwarder(s.cfg, func() string { return "" })
	t.Cleanup(s.Close)
	return s
}

// serveGRPC serves s on loopback and returns its address and a client.
func serveGRPC(t *testing.T, s *Server) (string, pb.ShoalClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
		<-done
	})
	return lis.Addr().String(), pb.NewShoalClient(conn)
}

// TestReadContent reads a blob bigger than a chunk through ImagePeer, from
// offsets, and the errors a fetcher acts on.
func TestReadContent(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (2*contentChunk+1000)/16)
	bigD := digest.FromBytes(big)
	store := &fakeImages{blobs: map[digest.Digest][]byte{bigD: big}}
	_, c := serveGRPC(t, imageServer(t, "n1", fakeMembers{}, store))
	_, noImages := serveGRPC(t, imageServer(t, "n2", fakeMembers{}, nil))
	peer := ImagePeer{Node: "n1", Client: c}

	tests := []struct {
		name   string
		client pb.ShoalClient
		dgst   digest.Digest
		offset int64
		want   []byte
		code   codes.Code
	}{
		{"whole", c, bigD, 0, big, codes.OK},
		{"from an offset across chunks", c, bigD, contentChunk - 10, big[contentChunk-10:], codes.OK},
		{"from the end", c, bigD, int64(len(big)), []byte{}, codes.OK},
		{"past the end", c, bigD, int64(len(big)) + 1, nil, codes.InvalidArgument},
		{"negative offset", c, bigD, -1, nil, codes.InvalidArgument},
		{"unknown blob", c, digest.FromString("nope"), 0, nil, codes.NotFound},
		{"malformed digest", c, "sha256:xyz", 0, nil, codes.InvalidArgument},
		{"runtime without images", noImages, bigD, 0, nil, codes.FailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := peer
			p.Client = tt.client
			r, err := p.ReadContent(t.Context(), tt.dgst, tt.offset)
			if err != nil {
				t.Fatal(err) // a stream's errors come with its first read
			}
			got, err := io.ReadAll(r)
			r.Close()
			if status.Code(err) != tt.code {
				t.Fatalf("read = %d bytes, %v; want code %s", len(got), err, tt.code)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "node n") {
					t.Fatalf("error %q does not name the node", err)
				}
				return
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("read %d bytes; want %d from offset %d", len(got), len(tt.want), tt.offset)
			}
		})
	}
}

func TestResolveImage(t *testing.T) {
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 321}
	store := &fakeImages{images: map[string]ocispec.Descriptor{"localhost/app:v1": target}}
	_, c := serveGRPC(t, imageServer(t, "n1", fakeMembers{}, store))
	peer := ImagePeer{Node: "n1", Client: c}

	got, err := peer.ResolveImage(t.Context(), "localhost/app:v1")
	if err != nil || got.Digest != target.Digest || got.Size != target.Size || got.MediaType != target.MediaType {
		t.Fatalf("resolve = %+v, %v; want %+v", got, err, target)
	}
	if _, err := peer.ResolveImage(t.Context(), "localhost/other:v1"); status.Code(err) != codes.NotFound {
		t.Fatalf("resolve of a missing image = %v; want NotFound", err)
	}
	if _, err := c.ResolveImage(t.Context(), &pb.ResolveImageRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("resolve of no name = %v; want InvalidArgument", err)
	}
}

// TestListImages: one entry per node, this one's without a call, each
// alive member asked for its own, and why a node has no list.
func TestListImages(t *testing.T) {
	app := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("app"), Size: 500}
	db := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("db"), Size: 900}
	member := func(name, addr string, st gossip.Status) gossip.Member {
		return gossip.Member{Name: name, Status: st, Meta: &pb.NodeMeta{GrpcAddress: addr}}
	}
	n2, _ := serveGRPC(t, imageServer(t, "n2", fakeMembers{}, &fakeImages{images: map[string]ocispec.Descriptor{"localhost/app:v1": app, "localhost/db:v2": db}}))
	n3, _ := serveGRPC(t, imageServer(t, "n3", fakeMembers{}, &fakeImages{listErr: errors.New("disk on fire")}))
	n7, _ := serveGRPC(t, imageServer(t, "n7", fakeMembers{}, nil))
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()
	members := fakeMembers{
		member("n1", "self-is-not-called:1", gossip.StatusAlive),
		member("n2", n2, gossip.StatusAlive),
		member("n3", n3, gossip.StatusAlive),
		member("n4", n2, gossip.StatusDead),
		member("n5", n2, gossip.StatusLeft),
		member("n6", refusedAddr, gossip.StatusAlive),
		member("n7", n7, gossip.StatusAlive),
	}
	s := imageServer(t, "n1", members, &fakeImages{images: map[string]ocispec.Descriptor{"localhost/app:v1": app}})

	resp, err := s.ListImages(t.Context(), &pb.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range resp.GetNodes() {
		line := n.GetNode() + ":"
		for _, i := range n.GetImages() {
			line += fmt.Sprintf(" %s@%s/%s/%d", i.GetName(), i.GetDigest(), i.GetMediaType(), i.GetSize())
		}
		if n.GetError() != "" {
			line += " error"
		}
		got = append(got, line)
	}
	appInfo := fmt.Sprintf("localhost/app:v1@%s/%s/500", app.Digest, app.MediaType)
	want := []string{
		"n1: " + appInfo,
		"n2: " + appInfo + fmt.Sprintf(" localhost/db:v2@%s/%s/900", db.Digest, db.MediaType),
		"n3: error", "n4: error", "n6: error", "n7: error",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("nodes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for node, text := range map[string]string{"n3": "disk on fire", "n4": "dead", "n7": "--runtime containerd"} {
		for _, n := range resp.GetNodes() {
			if n.GetNode() == node && !strings.Contains(n.GetError(), text) {
				t.Errorf("node %s: error %q; want it to mention %q", node, n.GetError(), text)
			}
		}
	}

	local, err := s.ListImages(t.Context(), &pb.ListImagesRequest{Local: true})
	if err != nil || len(local.GetNodes()) != 1 || local.GetNodes()[0].GetNode() != "n1" || len(local.GetNodes()[0].GetImages()) != 1 {
		t.Fatalf("local list = %v, %v; want n1's one image", local, err)
	}
	none := imageServer(t, "n8", fakeMembers{}, nil)
	if _, err := none.ListImages(t.Context(), &pb.ListImagesRequest{Local: true}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("local list without images = %v; want FailedPrecondition", err)
	}
}
