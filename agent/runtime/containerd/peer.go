package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Peers finds images on the cluster's other nodes, so that a pod can start
// on a node its image was never loaded on, with no registry. The agent
// implements it over gossip and the agents' gRPC API; this package only
// consumes it. Nothing a peer says is trusted: containerd checks every
// blob against its digest before it is committed.
type Peers interface {
	// ResolveImage asks the peers for the image ref as a manifest wrote
	// it (a peer also tries its normalized form) and returns one that
	// holds it, with the descriptor of the image's target. When no peer
	// holds it the error wraps errdefs.ErrNotFound.
	ResolveImage(ctx context.Context, ref string) (Peer, ocispec.Descriptor, error)
}

// Peer is one node that holds an image.
type Peer interface {
	// Name names the node, for logs and errors.
	Name() string
	// ReadContent streams the blob dgst of the node's content store from
	// offset on. The stream may break off; the fetch resumes from the
	// byte it got to.
	ReadContent(ctx context.Context, dgst digest.Digest, offset int64) (io.ReadCloser, error)
}

// peerIdleTimeout is how long a blob's stream may go without data before
// the fetch gives up on it (a peer that died mid-stream may not close
// it); the next try resumes from there.
const peerIdleTimeout = 30 * time.Second

// errPeerStalled cancels a stream that went quiet.
var errPeerStalled = errors.New("no data within the idle timeout")

// peerLease is how long the lease of a fetch from a peer that failed keeps
// its committed blobs and partial ingests, so that the next try resumes
// instead of starting over. A fetch that succeeds drops its lease: the
// image record holds the content from then on.
const peerLease = time.Hour

// pullFromPeers fetches the image ref from the first peer that holds it,
// stores it as name (ref normalized, as a registry pull would) and unpacks
// it. The fetch is containerd's own (client.Pull with a resolver over the
// peers), so blobs are verified as they are committed and a partial one
// is resumed from where the last try broke off.
func (d *Driver) pullFromPeers(ctx context.Context, ref, name string) (client.Image, error) {
	ls := d.client.LeasesService()
	lease, err := ls.Create(ctx, leases.WithRandomID(), leases.WithExpiration(peerLease))
	if err != nil {
		return nil, fmt.Errorf("lease for a fetch from peers: %w", err)
	}
	r := &peerResolver{peers: d.cfg.Peers, ref: ref}
	img, err := d.client.Pull(leases.WithLease(ctx, lease.ID), name,
		client.WithResolver(r), client.WithPullUnpack, client.WithPullSnapshotter(d.cfg.Snapshotter))
	fetched := r.fetched()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err != nil {
		d.dropBadIngests(cctx, fetched)
		if len(fetched) == 0 {
			// Nothing to resume: no peer had it, or its answer was refused.
			_ = ls.Delete(cctx, lease)
		}
		if p := r.source(); p != nil {
			return nil, fmt.Errorf("node %s: %w", p.Name(), err)
		}
		return nil, err
	}
	if err := ls.Delete(cctx, lease); err != nil && !errdefs.IsNotFound(err) {
		d.log.Warn("cannot drop the lease of a fetch from a peer (it expires on its own)", "lease", lease.ID, "err", err)
	}
	d.log.Info("fetched image from a peer", "image", name, "node", r.source().Name(),
		"digest", img.Target().Digest, "blobs", len(fetched), "bytes", r.bytes.Load())
	return img, nil
}

// dropBadIngests aborts the ingests of a failed fetch that hold a whole
// blob: with nothing left to write, their commit must have failed (wrong
// bytes from a peer), and resuming them would fail the same way forever.
// Partial ingests stay for the next try to resume.
func (d *Driver) dropBadIngests(ctx context.Context, fetched []ocispec.Descriptor) {
	cs := d.client.ContentStore()
	for _, desc := range fetched {
		ref := remotes.MakeRefKey(ctx, desc)
		st, err := cs.Status(ctx, ref)
		if err != nil || st.Offset < desc.Size {
			continue
		}
		if err := cs.Abort(ctx, ref); err != nil && !errdefs.IsNotFound(err) {
			d.log.Warn("cannot abort the ingest of a blob that failed its check", "ref", ref, "err", err)
			continue
		}
		d.log.Warn("dropped a fetched blob that failed its check", "digest", desc.Digest, "ref", ref)
	}
}

// peerResolver is a remotes.Resolver over Peers: Resolve asks them for the
// image, Fetcher reads blobs from the peer that answered. One serves one
// pull.
type peerResolver struct {
	peers Peers
	ref   string // as the manifest wrote it
	bytes atomic.Int64

	mu    sync.Mutex
	peer  Peer                 // guarded by mu; set by Resolve
	descs []ocispec.Descriptor // guarded by mu; what Fetch was asked for
}

var _ remotes.Resolver = (*peerResolver)(nil)

// Resolve returns name (the normalized reference the pull stores the
// image under) and the target a peer holds for r.ref.
func (r *peerResolver) Resolve(ctx context.Context, name string) (string, ocispec.Descriptor, error) {
	p, desc, err := r.peers.ResolveImage(ctx, r.ref)
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	if err := desc.Digest.Validate(); err != nil || desc.Size <= 0 || desc.MediaType == "" {
		return "", ocispec.Descriptor{}, fmt.Errorf("peer %s: image %s: not a usable target (media type %q, digest %q, size %d)",
			p.Name(), r.ref, desc.MediaType, desc.Digest, desc.Size)
	}
	r.mu.Lock()
	r.peer = p
	r.mu.Unlock()
	return name, desc, nil
}

// Fetcher reads from the peer Resolve found.
func (r *peerResolver) Fetcher(ctx context.Context, name string) (remotes.Fetcher, error) {
	p := r.source()
	if p == nil {
		return nil, fmt.Errorf("fetch %s from peers: not resolved", name)
	}
	return remotes.FetcherFunc(func(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
		r.mu.Lock()
		r.descs = append(r.descs, desc)
		r.mu.Unlock()
		return &peerBlob{ctx: ctx, peer: p, desc: desc, count: &r.bytes, idle: peerIdleTimeout}, nil
	}), nil
}

// Pusher refuses: peers serve images, they are not pushed to.
func (r *peerResolver) Pusher(ctx context.Context, name string) (remotes.Pusher, error) {
	return nil, fmt.Errorf("push %s to peers: %w", name, errdefs.ErrNotImplemented)
}

func (r *peerResolver) source() Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peer
}

func (r *peerResolver) fetched() []ocispec.Descriptor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ocispec.Descriptor(nil), r.descs...)
}

// peerBlob reads one blob from a peer. It is an io.Seeker so that
// content.Copy, finding part of the blob already written by an earlier try,
// seeks past it: the stream is (re)opened at the new offset on the next
// Read, and only the missing bytes cross the network.
type peerBlob struct {
	ctx   context.Context
	peer  Peer
	desc  ocispec.Descriptor
	count *atomic.Int64 // bytes read, over all blobs of the pull
	idle  time.Duration // see peerIdleTimeout

	off    int64         // offset of the next byte Read returns
	rc     io.ReadCloser // the stream at off; nil until the next Read opens it
	sctx   context.Context
	cancel context.CancelCauseFunc // the stream's
	timer  *time.Timer             // cancels the stream when it goes quiet
}

func (b *peerBlob) Read(p []byte) (int, error) {
	if b.rc == nil {
		if b.off >= b.desc.Size {
			return 0, io.EOF
		}
		b.sctx, b.cancel = context.WithCancelCause(b.ctx)
		rc, err := b.peer.ReadContent(b.sctx, b.desc.Digest, b.off)
		if err != nil {
			b.cancel(nil)
			return 0, fmt.Errorf("read blob %s from %s at byte %d: %w", b.desc.Digest, b.peer.Name(), b.off, err)
		}
		b.rc = rc
		cancel := b.cancel
		b.timer = time.AfterFunc(b.idle, func() { cancel(errPeerStalled) })
	}
	n, err := b.rc.Read(p)
	b.timer.Reset(b.idle)
	b.off += int64(n)
	b.count.Add(int64(n))
	switch {
	case errors.Is(err, io.EOF) && b.off < b.desc.Size:
		err = fmt.Errorf("blob %s from %s ended at byte %d of %d: %w", b.desc.Digest, b.peer.Name(), b.off, b.desc.Size, io.ErrUnexpectedEOF)
	case err != nil && !errors.Is(err, io.EOF):
		if cause := context.Cause(b.sctx); errors.Is(cause, errPeerStalled) {
			err = fmt.Errorf("%w: %s", cause, err) // say why the stream was cancelled
		}
		err = fmt.Errorf("read blob %s from %s at byte %d: %w", b.desc.Digest, b.peer.Name(), b.off, err)
	}
	return n, err
}

// Seek moves to an offset inside the blob; the open stream, if any, is
// dropped unless the offset is where it already is.
func (b *peerBlob) Seek(offset int64, whence int) (int64, error) {
	abs := offset
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		abs += b.off
	case io.SeekEnd:
		abs += b.desc.Size
	default:
		return b.off, fmt.Errorf("seek blob %s: whence %d: %w", b.desc.Digest, whence, errdefs.ErrInvalidArgument)
	}
	if abs < 0 || abs > b.desc.Size {
		return b.off, fmt.Errorf("seek blob %s to %d: outside its %d bytes: %w", b.desc.Digest, abs, b.desc.Size, errdefs.ErrInvalidArgument)
	}
	if abs != b.off {
		b.closeStream()
		b.off = abs
	}
	return abs, nil
}

func (b *peerBlob) Close() error {
	b.closeStream()
	return nil
}

func (b *peerBlob) closeStream() {
	if b.rc != nil {
		b.timer.Stop()
		_ = b.rc.Close()
		b.cancel(nil)
		b.rc = nil
	}
}
