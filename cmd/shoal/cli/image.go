package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/client"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func newImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the images of the agents' runtimes",
	}
	cmd.AddCommand(newImageLoadCmd(g))
	return cmd
}

// imageChunk is the size of the pieces an archive is sent in.
const imageChunk = 1 << 20

func newImageLoadCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "load FILE|-",
		Short: "Load an image archive (OCI or docker save) into the runtime of the agent --server names",
		Long: `Load an image archive (an OCI image layout or a docker save tarball) into
the runtime of the agent --server names, so pods can run it with no
registry. The agent checks every blob against its digest: a corrupt archive
is refused and nothing is kept. The agent must run --runtime containerd.
The upload may take longer than --timeout: it is given at least 10 minutes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var in io.Reader = os.Stdin
			if name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return err // names the file
				}
				defer f.Close()
				in = f
			} else {
				name = "standard input"
			}
			c, err := client.Dial(g.server)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), max(g.timeout, 10*time.Minute))
			defer cancel()
			stream, err := c.LoadImage(ctx)
			if err != nil {
				return c.Explain(err)
			}
			r := bufio.NewReaderSize(in, imageChunk)
			buf := make([]byte, imageChunk)
			for {
				n, rerr := io.ReadFull(r, buf)
				if n > 0 {
					if err := stream.Send(&pb.ImageChunk{Data: buf[:n]}); err != nil {
						break // the agent gave up: CloseAndRecv says why
					}
				}
				if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
					break
				}
				if rerr != nil {
					return fmt.Errorf("%s: %w", name, rerr)
				}
			}
			res, err := stream.CloseAndRecv()
			if err != nil {
				return fmt.Errorf("%s: %w", name, c.Explain(err))
			}
			fmt.Fprintf(g.stdout, "loaded %s on %s (%d bytes)\n", strings.Join(res.GetImages(), ", "), res.GetNode(), res.GetBytes())
			return nil
		},
	}
}
