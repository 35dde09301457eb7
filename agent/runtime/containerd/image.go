package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// ensureImage returns the image, unpacked into the snapshotter, pulling it
// as the policy says (empty: IfNotPresent). A name as written in a
// manifest ("busybox") is looked up as is and in its normalized form
// ("docker.io/library/busybox:latest"), which is also what is pulled. An
// image missing here is fetched from a peer that holds it (Config.Peers)
// before it is pulled from its registry.
func (d *Driver) ensureImage(ctx context.Context, ref, policy string) (client.Image, error) {
	if ref == "" {
		return nil, fmt.Errorf("image: %w: the containerd runtime needs an image", runtime.ErrImagePull)
	}
	switch policy {
	case "", runtime.PullIfNotPresent, runtime.PullAlways, runtime.PullNever:
	default:
		return nil, fmt.Errorf("image %s: imagePullPolicy %q: want Always, IfNotPresent or Never", ref, policy)
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w: %v", ref, runtime.ErrImagePull, err)
	}
	// Always looks too, though it pulls regardless: an image missing here
	// is asked of peers first, one that is here comes from its registry.
	local := false
	for _, name := range []string{ref, named.String()} {
		img, err := d.client.GetImage(ctx, name)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		if policy == runtime.PullAlways {
			local = true
			break
		}
		if err := d.unpack(ctx, img); err != nil {
			return nil, err
		}
		return img, nil
	}
	if policy == runtime.PullNever {
		return nil, fmt.Errorf("image %s: %w: not on this node and imagePullPolicy is Never", ref, runtime.ErrImagePull)
	}
	var fromPeers error
	if d.cfg.Peers != nil && !local {
		img, err := d.pullFromPeers(ctx, ref, named.String())
		if err == nil {
			return img, nil
		}
		fromPeers = err
		if !errdefs.IsNotFound(err) {
			d.log.Warn("cannot fetch image from peers; trying its registry", "image", ref, "err", err)
		}
	}
	d.log.Info("pulling image", "image", named.String())
	img, err := d.client.Pull(ctx, named.String(), client.WithPullUnpack, client.WithPullSnapshotter(d.cfg.Snapshotter))
	if err != nil {
		if fromPeers != nil {
			return nil, fmt.Errorf("pull image %s: %w: from peers: %v; from its registry: %w", ref, runtime.ErrImagePull, fromPeers, err)
		}
		return nil, fmt.Errorf("pull image %s: %w: %w", ref, runtime.ErrImagePull, err)
	}
	return img, nil
}

// unpack unpacks img into the snapshotter unless it is.
func (d *Driver) unpack(ctx context.Context, img client.Image) error {
	ok, err := img.IsUnpacked(ctx, d.cfg.Snapshotter)
	if err == nil && !ok {
		err = img.Unpack(ctx, d.cfg.Snapshotter)
	}
	if err != nil {
		return fmt.Errorf("unpack image %s: %w", img.Name(), err)
	}
	return nil
}

// ImportImage loads an OCI or Docker image archive (as written by `ctr
// image export`, `docker save` or internal/ociimage) into the driver's
// namespace and unpacks its images; it returns their names. A corrupt
// archive fails with nothing imported: blobs are checked against their
// digests as they are written, and images that cannot be unpacked are
// deleted again.
func (d *Driver) ImportImage(ctx context.Context, r io.Reader) ([]string, error) {
	if err := d.life.Closed(); err != nil {
		return nil, err
	}
	ctx = d.nsctx(ctx)
	imgs, err := d.client.Import(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("import image archive: %w", err)
	}
	names := make([]string, 0, len(imgs))
	var errs []error
	for _, i := range imgs {
		names = append(names, i.Name)
		if err := d.unpack(ctx, client.NewImage(d.client, i)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, name := range names {
			_ = d.client.ImageService().Delete(ctx, name)
		}
		return nil, fmt.Errorf("import image archive: %w", err)
	}
	d.log.Info("imported images", "images", names)
	return names, nil
}

// ListImages returns the target of every image in the driver's namespace,
// by name.
func (d *Driver) ListImages(ctx context.Context) (map[string]ocispec.Descriptor, error) {
	if err := d.life.Closed(); err != nil {
		return nil, err
	}
	imgs, err := d.client.ImageService().List(d.nsctx(ctx))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make(map[string]ocispec.Descriptor, len(imgs))
	for _, i := range imgs {
		out[i.Name] = i.Target
	}
	return out, nil
}

// ImageSize returns the bytes of content the image holds for this node's
// platform: manifest, config and layers (compressed, as stored).
func (d *Driver) ImageSize(ctx context.Context, name string) (int64, error) {
	if err := d.life.Closed(); err != nil {
		return 0, err
	}
	ctx = d.nsctx(ctx)
	img, err := d.client.GetImage(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("image %s: %w", name, err)
	}
	return img.Size(ctx)
}

// ResolveImage returns the name and target of an image of this node,
// looked up as Start does: as written, then normalized. It fails with
// errdefs.ErrNotFound when the node has neither.
func (d *Driver) ResolveImage(ctx context.Context, name string) (string, ocispec.Descriptor, error) {
	if err := d.life.Closed(); err != nil {
		return "", ocispec.Descriptor{}, err
	}
	ctx = d.nsctx(ctx)
	names := []string{name}
	if named, err := reference.ParseDockerRef(name); err == nil && named.String() != name {
		names = append(names, named.String())
	}
	for _, n := range names {
		img, err := d.client.ImageService().Get(ctx, n)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", ocispec.Descriptor{}, fmt.Errorf("image %s: %w", name, err)
		}
		return img.Name, img.Target, nil
	}
	return "", ocispec.Descriptor{}, fmt.Errorf("image %s: %w", name, errdefs.ErrNotFound)
}

// ReadContent returns a reader of the blob dgst of the driver's content
// store from offset on. It fails with errdefs.ErrNotFound when the blob is
// not there and errdefs.ErrInvalidArgument for a malformed digest or an
// offset outside the blob (its size is allowed: nothing is left to read).
func (d *Driver) ReadContent(ctx context.Context, dgst digest.Digest, offset int64) (io.ReadCloser, error) {
	if err := d.life.Closed(); err != nil {
		return nil, err
	}
	if err := dgst.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w: %v", dgst, errdefs.ErrInvalidArgument, err)
	}
	ra, err := d.client.ContentStore().ReaderAt(d.nsctx(ctx), ocispec.Descriptor{Digest: dgst})
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", dgst, err)
	}
	if offset < 0 || offset > ra.Size() {
		ra.Close()
		return nil, fmt.Errorf("blob %s: offset %d outside its %d bytes: %w", dgst, offset, ra.Size(), errdefs.ErrInvalidArgument)
	}
	return blobReader{io.NewSectionReader(ra, offset, ra.Size()-offset), ra}, nil
}

// blobReader reads a section of a blob and closes the blob's reader.
type blobReader struct {
	*io.SectionReader
	io.Closer
}
