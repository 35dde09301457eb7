package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
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
	cmd.AddCommand(newImageLoadCmd(g), newImageLsCmd(g))
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

func newImageLsCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the images of every agent's runtime and the nodes that hold them",
		Long: `List the images of every agent's runtime: the agent --server names asks
all the alive agents at once and merges their answers, one row per image
name and digest with the nodes that hold it. An agent that did not answer
is named in a warning on stderr. DIGEST is the image's target (its
manifest or index), which is what pods are started from and what an agent
fetches from a peer that holds it; SIZE is the content a node holds for
it (manifest, config and compressed layers).

Output: a table by default; -o wide shows the full digest and the media
type; -o json prints {"images":[{"name","digest","mediaType","size"
(the target's),"contentSize","nodes"}],"unanswered":[{"node","error"}]}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "", "wide", "json"); err != nil {
				return err
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.ListImages(ctx, &pb.ListImagesRequest{})
			if err != nil {
				return c.Explain(err)
			}
			return printImages(g, resp, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "wide or json")
	return cmd
}

// imageJSON is the stable -o json shape of one image of `image ls`: a
// name and target, and the nodes that hold it.
type imageJSON struct {
	Name      string `json:"name"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// ContentSize is the image's manifest, config and layers as a node
	// holds them (the largest any node reported; 0 when none could tell).
	ContentSize int64    `json:"contentSize,omitempty"`
	Nodes       []string `json:"nodes"`
}

// unansweredJSON is a node whose images are unknown, and why.
type unansweredJSON struct {
	Node  string `json:"node"`
	Error string `json:"error"`
}

// mergeImages turns the agents' lists into one row per name and digest,
// sorted by name then digest, each with the sorted nodes that hold it.
func mergeImages(resp *pb.ListImagesResponse) ([]imageJSON, []unansweredJSON) {
	type key struct{ name, digest string }
	byKey := map[key]*imageJSON{}
	var failed []unansweredJSON
	for _, n := range resp.GetNodes() {
		if n.GetError() != "" {
			failed = append(failed, unansweredJSON{Node: n.GetNode(), Error: n.GetError()})
			continue
		}
		for _, i := range n.GetImages() {
			k := key{i.GetName(), i.GetDigest()}
			row := byKey[k]
			if row == nil {
				row = &imageJSON{Name: i.GetName(), Digest: i.GetDigest(), MediaType: i.GetMediaType(), Size: i.GetSize()}
				byKey[k] = row
			}
			row.ContentSize = max(row.ContentSize, i.GetContentSize())
			if !slices.Contains(row.Nodes, n.GetNode()) {
				row.Nodes = append(row.Nodes, n.GetNode())
			}
		}
	}
	rows := make([]imageJSON, 0, len(byKey))
	for _, row := range byKey {
		slices.Sort(row.Nodes)
		rows = append(rows, *row)
	}
	slices.SortFunc(rows, func(a, b imageJSON) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	slices.SortFunc(failed, func(a, b unansweredJSON) int { return strings.Compare(a.Node, b.Node) })
	return rows, failed
}

// printImages prints the merged list and a warning on stderr for each node
// that did not answer.
func printImages(g *globals, resp *pb.ListImagesResponse, output string) error {
	rows, failed := mergeImages(resp)
	for _, f := range failed {
		fmt.Fprintf(g.stderr, "warning: no image list from node %s: %s\n", f.Node, f.Error)
	}
	if output == "json" {
		return writeJSON(g, struct {
			Images     []imageJSON      `json:"images"`
			Unanswered []unansweredJSON `json:"unanswered,omitempty"`
		}{rows, failed})
	}
	if len(rows) == 0 {
		fmt.Fprintln(g.stderr, "No images found.")
		return nil
	}
	wide := output == "wide"
	tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
	if wide {
		fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE\tNODES\tMEDIA-TYPE")
	} else {
		fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE\tNODES")
	}
	for _, r := range rows {
		size := r.ContentSize
		if size == 0 {
			size = r.Size
		}
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Digest, formatSize(size), strings.Join(r.Nodes, ","), r.MediaType)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, shortDigest(r.Digest), formatSize(size), strings.Join(r.Nodes, ","))
		}
	}
	return tw.Flush()
}

// shortDigest is the first 12 hex digits of a digest, without its
// algorithm ("sha256:").
func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 {
		d = d[i+1:]
	}
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// formatSize writes a byte count in binary units, as ctr does: "837 B",
// "1.5 KiB", "12.0 MiB".
func formatSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n)/1024, []string{"KiB", "MiB", "GiB", "TiB"}
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
