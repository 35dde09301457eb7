package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/containerd/containerdtest"
	"github.com/shoal-dev/shoal/gossip"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// TestPeerFetch: a driver whose node lacks an image fetches it from a
// peer's driver through the agents' image API (the real apiserver serving
// side and ImagePeer client, over gRPC on loopback), on one daemon in two
// namespaces. The daemon keeps namespaces' content apart (containerdtest),
// so every blob really crosses the wire and is checked on commit.
func TestPeerFetch(t *testing.T) {
	a, acfg := newDriver(t) // the test image is imported into A only
	ref := containerdtest.TestAppImage
	blobs := imageBlobs(t, acfg, ref)
	layer := blobs[len(blobs)-1]
	store := &peerStore{Driver: a}
	peers := servePeer(t, store)

	// newB is a driver of another node, with no image, that asks A.
	newB := func(t *testing.T) (*Driver, Config) {
		cfg := emptyConfig(t)
		cfg.Peers = peers
		return openDriver(t, cfg), cfg
	}
	spec := testapp("app", "print", "fetched from a peer")
	spec.ImagePullPolicy = runtime.PullIfNotPresent

	t.Run("fetched, stored with the same digests and run", func(t *testing.T) {
		store.reset()
		b, bcfg := newB(t)
		st, err := b.Start(t.Context(), testPod, spec, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st := waitExit(t, b, st.ID); st.ExitCode != 0 {
			t.Fatalf("exit = %+v", st)
		}
		if log := readLog(t, b, st.ID); !strings.Contains(log, "fetched from a peer") {
			t.Fatalf("log = %q", log)
		}
		got := imageBlobs(t, bcfg, ref)
		if len(got) != len(blobs) || len(blobs) < 3 {
			t.Fatalf("blobs in B %v; in A %v", got, blobs)
		}
		for i := range blobs {
			if got[i] != blobs[i] {
				t.Fatalf("blob %d in B = %+v; in A %+v", i, got[i], blobs[i])
			}
		}
		if sent := store.sentOf(layer.Digest); sent < layer.Size {
			t.Fatalf("the peer sent %d bytes of the %d-byte layer: the blob did not cross the wire", sent, layer.Size)
		}
		c, ctx := ctrClient(t, bcfg)
		if ls, err := c.LeasesService().List(ctx); err != nil || len(ls) != 0 {
			t.Fatalf("leases after a fetch = %v, %v; want none (the image holds the content)", ls, err)
		}
	})

	t.Run("wrong bytes are refused and leave nothing behind", func(t *testing.T) {
		store.reset()
		store.mu.Lock()
		store.corrupt, store.corruptAt = layer.Digest, layer.Size/2
		store.mu.Unlock()
		b, bcfg := newB(t)
		_, err := b.Start(t.Context(), testPod, spec, 0)
		if !errors.Is(err, runtime.ErrImagePull) || !strings.Contains(err.Error(), "from peers") {
			t.Fatalf("start = %v; want ErrImagePull naming the peers", err)
		}
		t.Log(err)
		if store.sentOf(layer.Digest) < layer.Size {
			t.Fatalf("the layer was not fetched whole (%d bytes)", store.sentOf(layer.Digest))
		}
		c, ctx := ctrClient(t, bcfg)
		if _, err := c.ImageService().Get(ctx, ref); !errdefs.IsNotFound(err) {
			t.Fatalf("image record after a refused fetch: %v", err)
		}
		if _, err := c.ContentStore().Info(ctx, layer.Digest); !errdefs.IsNotFound(err) {
			t.Fatalf("layer in the content store after a refused fetch: %v", err)
		}
		sts, err := c.ContentStore().ListStatuses(ctx)
		if err != nil || len(sts) != 0 {
			t.Fatalf("ingests after a refused fetch = %+v, %v; want the bad one aborted", sts, err)
		}
		// An honest peer then serves it: nothing bad was kept to resume.
		store.reset()
		st, err := b.Start(t.Context(), testPod, spec, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st := waitExit(t, b, st.ID); st.ExitCode != 0 {
			t.Fatalf("exit = %+v", st)
		}
	})

	t.Run("a fetch cut off resumes where it stopped", func(t *testing.T) {
		store.reset()
		cutAt := layer.Size / 3
		store.mu.Lock()
		store.cut, store.cutAt = layer.Digest, cutAt
		store.mu.Unlock()
		b, bcfg := newB(t)
		if _, err := b.Start(t.Context(), testPod, spec, 0); !errors.Is(err, runtime.ErrImagePull) {
			t.Fatalf("start through a stream cut off = %v; want ErrImagePull", err)
		}
		c, ctx := ctrClient(t, bcfg)
		if _, err := c.ImageService().Get(ctx, ref); !errdefs.IsNotFound(err) {
			t.Fatalf("image record after a broken fetch: %v", err)
		}
		st, err := b.Start(t.Context(), testPod, spec, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st := waitExit(t, b, st.ID); st.ExitCode != 0 {
			t.Fatalf("exit = %+v", st)
		}
		offs := store.offsetsOf(layer.Digest)
		if len(offs) != 2 || offs[0] != 0 || offs[1] <= 0 || offs[1] > cutAt {
			t.Fatalf("layer read at offsets %v; want 0, then where the cut left it (0 < offset <= %d)", offs, cutAt)
		}
		if sent := store.sentOf(layer.Digest); sent != cutAt+layer.Size-offs[1] {
			t.Fatalf("the peer sent %d bytes of the layer; want %d before the cut and %d after", sent, cutAt, layer.Size-offs[1])
		}
		if got := imageBlobs(t, bcfg, ref); got[len(got)-1] != layer {
			t.Fatalf("layer in B = %+v; want %+v", got[len(got)-1], layer)
		}
	})
}

// blob is a blob as a content store holds it.
type blob struct {
	Digest digest.Digest
	Size   int64
}

// imageBlobs returns the image's target, config and layers, as the
// content store of cfg's namespace holds them.
func imageBlobs(t *testing.T, cfg Config, ref string) []blob {
	t.Helper()
	c, ctx := ctrClient(t, cfg)
	img, err := c.ImageService().Get(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	cs := c.ContentStore()
	m, err := images.Manifest(ctx, cs, img.Target, platforms.Default())
	if err != nil {
		t.Fatal(err)
	}
	var out []blob
	for _, d := range append([]ocispec.Descriptor{img.Target, m.Config}, m.Layers...) {
		info, err := cs.Info(ctx, d.Digest)
		if err != nil {
			t.Fatalf("blob %s of %s: %v", d.Digest, ref, err)
		}
		out = append(out, blob{info.Digest, info.Size})
	}
	return out
}

// servePeer serves store's images through the agents' image API on
// loopback and returns Peers that ask it.
func servePeer(t *testing.T, store apiserver.ImageStore) Peers {
	t.Helper()
	s, err := apiserver.New(apiserver.Config{Node: "peer-a", Raft: noRaft{}, Members: noMembers{}})
	if err != nil {
		t.Fatal(err)
	}
	s.SetImages(store)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = g.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
		<-served
		s.Close()
	})
	return onePeer{apiserver.ImagePeer{Node: "peer-a", Client: pb.NewShoalClient(conn)}}
}

// noRaft and noMembers stand in for what the image calls never use.
type noRaft struct{ apiserver.Raft }

type noMembers struct{}

func (noMembers) Members() []gossip.Member { return nil }

// onePeer is Peers of one agent, as the agent's own Peers is of many.
type onePeer struct{ peer apiserver.ImagePeer }

func (p onePeer) ResolveImage(ctx context.Context, ref string) (Peer, ocispec.Descriptor, error) {
	desc, err := p.peer.ResolveImage(ctx, ref)
	if status.Code(err) == codes.NotFound {
		return nil, desc, fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
	}
	if err != nil {
		return nil, desc, err
	}
	return p.peer, desc, nil
}

// peerStore serves a driver's images and blobs, and can lie: flip a byte
// of one blob, or break the next stream of one blob after some bytes. It
// records the offsets each blob was asked from and the bytes sent.
type peerStore struct {
	*Driver

	mu        sync.Mutex
	corrupt   digest.Digest // flip the byte at corruptAt of this blob
	corruptAt int64
	cut       digest.Digest // break the next stream of this blob at cutAt
	cutAt     int64
	offsets   map[digest.Digest][]int64
	sent      map[digest.Digest]int64
}

func (s *peerStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt, s.cut = "", ""
	s.offsets, s.sent = map[digest.Digest][]int64{}, map[digest.Digest]int64{}
}

func (s *peerStore) ReadContent(ctx context.Context, dgst digest.Digest, offset int64) (io.ReadCloser, error) {
	rc, err := s.Driver.ReadContent(ctx, dgst, offset)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offsets[dgst] = append(s.offsets[dgst], offset)
	r := &lyingReader{ReadCloser: rc, store: s, dgst: dgst, pos: offset, flipAt: -1, cutAt: -1}
	if dgst == s.corrupt {
		r.flipAt = s.corruptAt
	}
	if dgst == s.cut {
		r.cutAt, s.cut = s.cutAt, "" // once
	}
	return r, nil
}

func (s *peerStore) sentOf(dgst digest.Digest) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[dgst]
}

func (s *peerStore) offsetsOf(dgst digest.Digest) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.offsets[dgst]...)
}

// lyingReader reads a blob from pos, counting what it returns, flipping
// the byte at flipAt and failing at cutAt (-1: never).
type lyingReader struct {
	io.ReadCloser
	store         *peerStore
	dgst          digest.Digest
	pos           int64
	flipAt, cutAt int64
}

func (r *lyingReader) Read(p []byte) (int, error) {
	if r.cutAt >= 0 {
		if r.pos >= r.cutAt {
			return 0, errors.New("connection cut off by the test")
		}
		if left := r.cutAt - r.pos; int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := r.ReadCloser.Read(p)
	if r.flipAt >= r.pos && r.flipAt < r.pos+int64(n) {
		p[r.flipAt-r.pos] ^= 0xff
	}
	r.pos += int64(n)
	r.store.mu.Lock()
	r.store.sent[r.dgst] += int64(n)
	r.store.mu.Unlock()
	return n, err
}

// memPeer serves one blob from memory and records the offsets asked;
// stall makes every stream hang after its first byte.
type memPeer struct {
	data  []byte
	stall bool

	mu      sync.Mutex
	offsets []int64
}

func (p *memPeer) Name() string { return "mem" }

func (p *memPeer) ReadContent(ctx context.Context, _ digest.Digest, offset int64) (io.ReadCloser, error) {
	p.mu.Lock()
	p.offsets = append(p.offsets, offset)
	p.mu.Unlock()
	r := io.Reader(bytes.NewReader(p.data[offset:]))
	if p.stall {
		r = io.MultiReader(io.LimitReader(r, 1), stalled{ctx})
	}
	return io.NopCloser(r), nil
}

// stalled blocks until its context ends, as a dead peer's stream does.
type stalled struct{ ctx context.Context }

func (s stalled) Read([]byte) (int, error) {
	<-s.ctx.Done()
	return 0, status.FromContextError(s.ctx.Err()).Err()
}

func TestPeerBlob(t *testing.T) {
	data := []byte("0123456789abcdefghij")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	newBlob := func(p Peer, idle time.Duration) *peerBlob {
		return &peerBlob{ctx: t.Context(), peer: p, desc: desc, count: new(atomic.Int64), idle: idle}
	}

	t.Run("seeks reopen the stream at the offset, lazily", func(t *testing.T) {
		p := &memPeer{data: data}
		b := newBlob(p, time.Minute)
		defer b.Close()
		if _, err := b.Seek(5, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 3)
		if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "567" {
			t.Fatalf("read after seek = %q, %v", buf, err)
		}
		if off, err := b.Seek(2, io.SeekCurrent); err != nil || off != 10 {
			t.Fatalf("seek current = %d, %v", off, err)
		}
		rest, err := io.ReadAll(b)
		if err != nil || string(rest) != "abcdefghij" {
			t.Fatalf("rest = %q, %v", rest, err)
		}
		if off, err := b.Seek(0, io.SeekCurrent); err != nil || off != desc.Size {
			t.Fatalf("offset at the end = %d, %v", off, err)
		}
		if _, err := b.Seek(desc.Size+1, io.SeekStart); !errdefs.IsInvalidArgument(err) {
			t.Fatalf("seek past the end = %v", err)
		}
		if got := b.count.Load(); got != 13 {
			t.Fatalf("bytes counted = %d; want 13", got)
		}
		if p.offsets[0] != 5 || p.offsets[1] != 10 || len(p.offsets) != 2 {
			t.Fatalf("streams opened at %v; want 5 then 10 (Seek opens none)", p.offsets)
		}
	})
	t.Run("a stream that ends early is an unexpected EOF", func(t *testing.T) {
		b := newBlob(&memPeer{data: data[:7]}, time.Minute)
		defer b.Close()
		_, err := io.ReadAll(b)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "at byte 7 of 20") {
			t.Fatalf("read of a short stream = %v", err)
		}
	})
	t.Run("a stream that goes quiet is given up", func(t *testing.T) {
		b := newBlob(&memPeer{data: data, stall: true}, 50*time.Millisecond)
		defer b.Close()
		got, err := io.ReadAll(b)
		if !errors.Is(err, errPeerStalled) || len(got) != 1 {
			t.Fatalf("read of a stalled stream = %q, %v; want 1 byte, then errPeerStalled", got, err)
		}
	})
}
