package process

import (
	"context"
	"io"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// Logs streams the attempt's log: the rotated part (<attempt>.log.1) if
// any, then the current file. With follow it keeps tailing, across
// rotations, until ctx ends (the reader fails with ctx's cause), the driver
// is closed (runtime.ErrClosed), or the attempt has exited and everything is
// read (io.EOF). Closing the reader stops it too.
func (d *Driver) Logs(ctx context.Context, id runtime.ContainerID, follow bool) (io.ReadCloser, error) {
	return d.attempts.Logs(ctx, id, follow)
}
