package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// ensureImage returns the image, unpacked into the snapshotter, pulling it
// as the policy says (empty: IfNotPresent). A name as written in a
// manifest ("busybox") is looked up as is and in its normalized form
// ("docker.io/library/busybox:latest"), which is also what is pulled.
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
	if policy != runtime.PullAlways {
		for _, name := range []string{ref, named.String()} {
			img, err := d.client.GetImage(ctx, name)
			if errdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", ref, err)
			}
			if err := d.unpack(ctx, img); err != nil {
				return nil, err
			}
			return img, nil
		}
	}
	if policy == runtime.PullNever {
		return nil, fmt.Errorf("image %s: %w: not on this node and imagePullPolicy is Never", ref, runtime.ErrImagePull)
	}
	d.log.Info("pulling image", "image", named.String())
	img, err := d.client.Pull(ctx, named.String(), client.WithPullUnpack, client.WithPullSnapshotter(d.cfg.Snapshotter))
	if err != nil {
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
