package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// errNoMetrics is kubectl's answer when there is nothing measured yet.
var errNoMetrics = errors.New("metrics not available yet")

func newTopCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show the CPU and memory use of pods or nodes",
		Long: `Show the CPU and memory use of pods or nodes, as every agent measures its
own containers: CPU as the rate over the last sampling interval (10 s), in
millicores; memory as the working set (usage minus inactive page cache).
The agent asked gathers the figures of every live agent; one that does
not answer is named in a warning on stderr. A pod appears once it has been
sampled twice. The sim runtime measures nothing.

  shoal top pods -A
  shoal top pods web-1 --containers
  shoal top nodes`,
	}
	cmd.AddCommand(newTopPodsCmd(g), newTopNodesCmd(g))
	return cmd
}

func newTopPodsCmd(g *globals) *cobra.Command {
	var (
		namespace     string
		allNamespaces bool
		containers    bool
	)
	cmd := &cobra.Command{
		Use:     "pods [NAME]",
		Aliases: []string{"pod", "po"},
		Short:   "Show the CPU and memory use of pods",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if allNamespaces && namespace != "" {
				return fmt.Errorf("give either -n or -A, not both")
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			ns := namespaceOr(namespace)
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Top(ctx, &pb.TopRequest{})
			if err != nil {
				return c.Explain(err)
			}
			warnNodes(g.stderr, resp.GetNodes())
			pods := filterPods(resp.GetPods(), ns, allNamespaces, name)
			if len(pods) > 0 {
				return printTopPods(g.stdout, pods, allNamespaces, containers)
			}
			// Nothing measured: say whether there is nothing to measure.
			listNS := ns
			if allNamespaces {
				listNS = ""
			}
			list, err := c.List(ctx, &pb.ListRequest{Kind: "Pod", Namespace: listNS, Read: &pb.ReadOptions{}})
			if err != nil {
				return c.Explain(err)
			}
			exists := false
			for _, o := range list.GetObjects() {
				exists = exists || name == "" || o.GetName() == name
			}
			switch {
			case name != "" && !exists:
				return fmt.Errorf("pods %q not found in namespace %q", name, ns)
			case name != "":
				return fmt.Errorf("metrics not available for pod %s/%s yet", ns, name)
			case exists:
				return errNoMetrics
			case allNamespaces:
				fmt.Fprintln(g.stderr, "No resources found")
			default:
				fmt.Fprintf(g.stderr, "No resources found in %s namespace.\n", ns)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	fl.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "pods of every namespace")
	fl.BoolVar(&containers, "containers", false, "one line per container")
	return cmd
}

func newTopNodesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "nodes [NAME]",
		Aliases: []string{"node", "no"},
		Short:   "Show the CPU and memory use of nodes (the sum of their pods)",
		Long: `Show the CPU and memory use of nodes: the sum over the pods each agent runs,
and as a percentage of the node's allocatable CPU and memory (--cpu and
--memory of its agent).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Top(ctx, &pb.TopRequest{})
			if err != nil {
				return c.Explain(err)
			}
			nodes := resp.GetNodes()
			if len(args) == 1 {
				nodes = nil
				for _, n := range resp.GetNodes() {
					if n.GetNode() == args[0] {
						nodes = append(nodes, n)
					}
				}
				if len(nodes) == 0 {
					return fmt.Errorf("nodes %q not found", args[0])
				}
			}
			warnNodes(g.stderr, nodes)
			measured := false
			for _, n := range nodes {
				measured = measured || n.GetError() == ""
			}
			if !measured {
				return errNoMetrics
			}
			return printTopNodes(g.stdout, nodes)
		},
	}
}

// warnNodes writes one line on w per node that reported no usage.
func warnNodes(w io.Writer, nodes []*pb.NodeUsage) {
	for _, n := range nodes {
		if n.GetError() != "" {
			fmt.Fprintf(w, "warning: node %s reported no usage: %s\n", n.GetNode(), n.GetError())
		}
	}
}

// filterPods keeps the pods of namespace ns (every namespace with all),
// and of that name when name is set.
func filterPods(pods []*pb.PodUsage, ns string, all bool, name string) []*pb.PodUsage {
	var out []*pb.PodUsage
	for _, p := range pods {
		if (all || p.GetNamespace() == ns) && (name == "" || p.GetName() == name) {
			out = append(out, p)
		}
	}
	return out
}

// printTopPods prints kubectl's top pod table: NAME, CPU(cores),
// MEMORY(bytes), per pod or (containers) per container with the pod in
// a POD column, after a NAMESPACE column with allNamespaces.
func printTopPods(w io.Writer, pods []*pb.PodUsage, allNamespaces, containers bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	var h []string
	if allNamespaces {
		h = append(h, "NAMESPACE")
	}
	if containers {
		h = append(h, "POD")
	}
	h = append(h, "NAME", "CPU(cores)", "MEMORY(bytes)")
	fmt.Fprintln(tw, strings.Join(h, "\t"))
	for _, p := range pods {
		var lead []string
		if allNamespaces {
			lead = append(lead, p.GetNamespace())
		}
		if containers {
			for _, c := range p.GetContainers() {
				row := append(append([]string{}, lead...), p.GetName(), c.GetName(), cpuText(c.GetCpuMillis()), memText(c.GetMemoryBytes()))
				fmt.Fprintln(tw, strings.Join(row, "\t"))
			}
			continue
		}
		var cpu, mem int64
		for _, c := range p.GetContainers() {
			cpu, mem = cpu+c.GetCpuMillis(), mem+c.GetMemoryBytes()
		}
		row := append(lead, p.GetName(), cpuText(cpu), memText(mem))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// printTopNodes prints kubectl's top node table; a node that reported no
// usage shows <unknown>, as kubectl shows a node without metrics.
func printTopNodes(w io.Writer, nodes []*pb.NodeUsage) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCPU(cores)\tCPU(%)\tMEMORY(bytes)\tMEMORY(%)")
	for _, n := range nodes {
		row := []string{n.GetNode(), unknown, unknown, unknown, unknown}
		if n.GetError() == "" {
			row = []string{n.GetNode(),
				cpuText(n.GetCpuMillis()), percent(n.GetCpuMillis(), n.GetCpuAllocatableMillis()),
				memText(n.GetMemoryBytes()), percent(n.GetMemoryBytes(), n.GetMemoryAllocatableBytes())}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

const unknown = "<unknown>"

// cpuText is kubectl's CPU(cores) cell: millicores.
func cpuText(millis int64) string { return fmt.Sprintf("%dm", millis) }

// memText is kubectl's MEMORY(bytes) cell: whole MiB, rounded down.
func memText(bytes int64) string { return fmt.Sprintf("%dMi", bytes/(1<<20)) }

// percent is used as a whole percentage of capacity, rounded down.
func percent(used, capacity int64) string {
	if capacity <= 0 {
		return unknown
	}
	return fmt.Sprintf("%d%%", used*100/capacity)
}
