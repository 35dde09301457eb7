package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
	"github.com/shoal-dev/shoal/version"
)

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect the cluster: gossip members and the Raft group"}
	cmd.AddCommand(newMembersCmd(g), newRaftCmd(g))
	return cmd
}

// memberJSON is the stable -o json shape of one member.
type memberJSON struct {
	Name        string            `json:"name"`
	Address     string            `json:"address"`
	Status      string            `json:"status"`
	NodeID      string            `json:"nodeId,omitempty"`
	GRPCAddress string            `json:"grpcAddress,omitempty"`
	RaftAddress string            `json:"raftAddress,omitempty"`
	Version     string            `json:"version,omitempty"`
	CPUMillis   int64             `json:"cpuMillis,omitempty"`
	MemoryBytes int64             `json:"memoryBytes,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

func newMembersCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the gossip members the answering agent knows, with their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "", "json"); err != nil {
				return err
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Members(ctx, &pb.MembersRequest{})
			if err != nil {
				return c.Explain(err)
			}
			out := struct {
				Members []memberJSON `json:"members"`
			}{Members: []memberJSON{}}
			for _, m := range resp.GetMembers() {
				mm := m.GetMeta()
				out.Members = append(out.Members, memberJSON{
					Name: m.GetName(), Address: m.GetAddress(), Status: m.GetStatus(), NodeID: mm.GetNodeId(),
					GRPCAddress: mm.GetGrpcAddress(), RaftAddress: mm.GetRaftAddress(), Version: mm.GetVersion(),
					CPUMillis: mm.GetCpuMillis(), MemoryBytes: mm.GetMemoryBytes(), Labels: mm.GetLabels(),
				})
			}
			if output == "json" {
				return writeJSON(g, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADDRESS\tSTATUS\tGRPC\tVERSION")
			for _, m := range out.Members {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, m.Address, m.Status, m.GRPCAddress, m.Version)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json for the machine-readable form")
	return cmd
}

// raftJSON is the stable -o json shape of the Raft group.
type raftJSON struct {
	Leader       string           `json:"leader"`
	Term         uint64           `json:"term"`
	AppliedIndex uint64           `json:"appliedIndex"`
	CommitIndex  uint64           `json:"commitIndex"`
	Node         string           `json:"node"`
	State        string           `json:"state"`
	Servers      []raftServerJSON `json:"servers"`
}

type raftServerJSON struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Alive    bool   `json:"alive"`
	Leader   bool   `json:"leader"`
}

func newRaftCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "raft",
		Short: "Show the Raft group: leader, term, each server's suffrage, the applied index",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "", "json"); err != nil {
				return err
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.RaftStatus(ctx, &pb.RaftStatusRequest{})
			if err != nil {
				return c.Explain(err)
			}
			out := raftJSON{Leader: resp.GetLeader(), Term: resp.GetTerm(), AppliedIndex: resp.GetAppliedIndex(),
				CommitIndex: resp.GetCommitIndex(), Node: resp.GetNode(), State: resp.GetState(), Servers: []raftServerJSON{}}
			for _, s := range resp.GetServers() {
				out.Servers = append(out.Servers, raftServerJSON{ID: s.GetId(), Address: s.GetAddress(),
					Suffrage: s.GetSuffrage(), Alive: s.GetAlive(), Leader: s.GetLeader()})
			}
			if output == "json" {
				return writeJSON(g, out)
			}
			fmt.Fprintf(g.stdout, "Leader: %s   Term: %d   Applied index: %d   (answered by %s, %s)\n",
				orNone(out.Leader), out.Term, out.AppliedIndex, out.Node, out.State)
			tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tSTATUS\tLEADER")
			for _, s := range out.Servers {
				st := "dead"
				if s.Alive {
					st = "alive"
				}
				lead := ""
				if s.Leader {
					lead = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Address, s.Suffrage, st, lead)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json for the machine-readable form")
	return cmd
}

func newVersionCmd(g *globals) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client version and the answering agent's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(g.stdout, "Client Version: %s\n", version.Version)
			if clientOnly {
				return nil
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Version(ctx, &pb.VersionRequest{})
			if err != nil {
				return c.Explain(err)
			}
			fmt.Fprintf(g.stdout, "Server Version: %s (agent %s)\n", resp.GetVersion(), resp.GetNode())
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client version only")
	return cmd
}

func writeJSON(g *globals, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.stdout, string(b))
	return err
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
