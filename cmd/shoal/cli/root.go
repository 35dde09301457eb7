// Package cli is the shoal command line: the agent verb and the kubectl-like
// client verbs. It wires flags into configs; the work happens elsewhere.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/client"
)

// globals are the flags every client verb shares.
type globals struct {
	server  string
	timeout time.Duration
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

// Main runs the CLI with args and returns the exit code. Errors are printed
// as one line on stderr.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "shoal",
		Short: "Shoal: a container orchestrator with no central master",
		Long: `Shoal runs one identical agent per machine. Agents find each other by gossip,
keep the desired state in a Raft log replicated to every node, and serve the
API from any of them.

  shoal agent --name n1 --bind 127.0.0.2 --bootstrap-expect 3 --data-dir /tmp/n1
  shoal apply -f app.yaml
  shoal get configmaps -A
  shoal describe service web

` + kindsHelp() + ``,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("SHOAL_SERVER")
	if def == "" {
		def = client.DefaultServer
	}
	root.PersistentFlags().StringVarP(&g.server, "server", "s", def, "agent gRPC address (env SHOAL_SERVER)")
	root.PersistentFlags().DurationVar(&g.timeout, "timeout", 15*time.Second, "how long a call may take")
	root.AddCommand(
		newAgentCmd(g),
		newApplyCmd(g),
		newGetCmd(g),
		newDescribeCmd(g),
		newDeleteCmd(g),
		newClusterCmd(g),
		newScaleCmd(g),
		newAutoscaleCmd(g),
		newPatchCmd(g),
		newSetCmd(g),
		newRolloutCmd(g),
		newCordonCmd(g, true),
		newCordonCmd(g, false),
		newDrainCmd(g),
		newLogsCmd(g),
		newExecCmd(g),
		newTopCmd(g),
		newImageCmd(g),
		newVersionCmd(g),
	)
	return root
}

// dial connects to the agent and returns a context bounded by --timeout.
func (g *globals) dial(cmd *cobra.Command) (*client.Conn, context.Context, context.CancelFunc, error) {
	c, err := client.Dial(g.server)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	return c, ctx, func() { cancel(); _ = c.Close() }, nil
}
