package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// readFlags choose how fresh a read must be.
type readFlags struct {
	consistency string
	minRevision uint64
}

func (r *readFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.consistency, "consistency", "linearizable",
		"linearizable (see every acknowledged write) or local (the answering agent's replica as it is)")
	cmd.Flags().Uint64Var(&r.minRevision, "min-revision", 0, "wait until the answering agent has applied this revision")
}

func (r *readFlags) options() (*pb.ReadOptions, error) {
	switch r.consistency {
	case "linearizable":
		return &pb.ReadOptions{Linearizable: true, MinRevision: r.minRevision}, nil
	case "local":
		return &pb.ReadOptions{MinRevision: r.minRevision}, nil
	}
	return nil, fmt.Errorf("--consistency %q: want linearizable or local", r.consistency)
}

func newGetCmd(g *globals) *cobra.Command {
	var (
		namespace     string
		allNamespaces bool
		selector      string
		output        string
		read          readFlags
		watch         bool
	)
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...] | KIND/NAME...",
		Short: "List objects or show some by name",
		Long: `List objects of a kind, or show some by name.

` + kindsHelp() + `

Output: a table by default; -o wide adds columns; -o json prints the
Kubernetes JSON of the object, or for a list {"apiVersion":"v1","kind":"List",
"items":[...]}; -o yaml likewise in YAML; -o name prints kind/name.

  shoal get services -o wide
  shoal get endpoints web -o yaml
  shoal get pods -A -l app=web`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "", "wide", "json", "yaml", "name"); err != nil {
				return err
			}
			ro, err := read.options()
			if err != nil {
				return err
			}
			if allNamespaces && namespace != "" {
				return fmt.Errorf("give either -n or -A, not both")
			}
			if names, ok, err := endpointsArgs(args); err != nil {
				return err
			} else if ok {
				if watch {
					return fmt.Errorf("--watch: endpoints are computed from services and pods, not stored; watch those instead")
				}
				c, ctx, done, err := g.dial(cmd)
				if err != nil {
					return err
				}
				defer done()
				return getEndpoints(ctx, g, c, endpointsQuery{names: names, namespace: namespace,
					allNamespaces: allNamespaces, selector: selector, output: output, read: ro})
			}
			refs, err := parseRefs(args, false)
			if err != nil {
				return err
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			var objs []*pb.Object
			single := false
			if watch {
				if refs[0].name != "" {
					return fmt.Errorf("--watch lists a kind: give no names")
				}
				ns := ""
				if refs[0].kind.Namespaced && !allNamespaces {
					ns = namespaceOr(namespace)
				}
				done()
				return watchObjects(cmd.Context(), g, refs[0].kind, ns, selector, output, allNamespaces, ro)
			}
			if refs[0].name == "" {
				k := refs[0].kind
				ns := ""
				if k.Namespaced && !allNamespaces {
					ns = namespaceOr(namespace)
				}
				resp, err := c.List(ctx, &pb.ListRequest{Kind: k.Name, Namespace: ns, LabelSelector: selector, Read: ro})
				if err != nil {
					return c.Explain(err)
				}
				objs = resp.GetObjects()
				if len(objs) == 0 && output == "" {
					where := ""
					if ns != "" {
						where = " in " + ns + " namespace"
					}
					fmt.Fprintf(g.stderr, "No resources found%s.\n", where)
					return nil
				}
			} else {
				if selector != "" {
					return fmt.Errorf("-l cannot be used with names")
				}
				single = len(refs) == 1
				for _, r := range refs {
					o, err := getOne(ctx, c, r, namespace, ro)
					if err != nil {
						return c.Explain(err)
					}
					objs = append(objs, o)
				}
			}
			return printObjects(g.stdout, objs, output, single || output == "" || output == "wide" || output == "name", allNamespaces)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	fl.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list across all namespaces")
	fl.StringVarP(&selector, "selector", "l", "", "label selector (app=web,tier!=db,env in (a,b))")
	fl.StringVarP(&output, "output", "o", "", "wide, json, yaml or name")
	fl.BoolVarP(&watch, "watch", "w", false, "after listing, print every change until interrupted")
	read.add(cmd)
	return cmd
}

// watchObjects lists a kind, then prints each change as it is applied, until
// the context ends (Ctrl-C) or the stream breaks.
func watchObjects(ctx context.Context, g *globals, k object.Kind, ns, selector, output string, allNamespaces bool, ro *pb.ReadOptions) error {
	c, err := client.Dial(g.server)
	if err != nil {
		return err
	}
	defer c.Close()
	lctx, cancel := context.WithTimeout(ctx, g.timeout)
	list, err := c.List(lctx, &pb.ListRequest{Kind: k.Name, Namespace: ns, LabelSelector: selector, Read: ro})
	cancel()
	if err != nil {
		return c.Explain(err)
	}
	if err := printObjects(g.stdout, list.GetObjects(), watchFormat(output), true, allNamespaces); err != nil {
		return err
	}
	stream, err := c.Watch(ctx, &pb.WatchRequest{Kind: k.Name, Namespace: ns, LabelSelector: selector, FromRevision: list.GetRevision()})
	if err != nil {
		return c.Explain(err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return c.Explain(err)
		}
		o := ev.GetObject()
		switch output {
		case "json", "yaml", "name":
			if err := printObjects(g.stdout, []*pb.Object{o}, watchFormat(output), true, allNamespaces); err != nil {
				return err
			}
		default:
			row := []*pb.Object{o}
			var buf strings.Builder
			if err := printTable(&buf, row, output == "wide", allNamespaces); err != nil {
				return err
			}
			lines := strings.SplitN(buf.String(), "\n", 2)
			if len(lines) == 2 {
				fmt.Fprintf(g.stdout, "%s\t%s", strings.ToLower(ev.GetType().String()), lines[1])
			}
		}
	}
}

// watchFormat prints json as one compact object per line, so a stream of
// changes stays easy to parse.
func watchFormat(output string) string {
	if output == "json" {
		return "json-line"
	}
	return output
}

func getOne(ctx context.Context, c *client.Conn, r ref, namespace string, ro *pb.ReadOptions) (*pb.Object, error) {
	ns := ""
	if r.kind.Namespaced {
		ns = namespaceOr(namespace)
	}
	resp, err := c.Get(ctx, &pb.GetRequest{Kind: r.kind.Name, Namespace: ns, Name: r.name, Read: ro})
	if err != nil {
		return nil, err
	}
	return resp.GetObject(), nil
}

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// printObjects writes objects in the chosen format. single makes json and
// yaml print the lone object rather than a List.
func printObjects(w io.Writer, objs []*pb.Object, output string, single, allNamespaces bool) error {
	switch output {
	case "json-line":
		for _, o := range objs {
			b, err := object.ToJSON(o)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, string(b))
		}
		return nil
	case "json":
		var b []byte
		var err error
		if single && len(objs) == 1 {
			b, err = object.ToJSON(objs[0])
		} else {
			b, err = object.ListJSON(objs)
		}
		if err != nil {
			return err
		}
		return printJSON(w, b)
	case "yaml":
		for i, o := range objs {
			b, err := object.ToYAML(o)
			if err != nil {
				return err
			}
			if i > 0 || !single {
				fmt.Fprintln(w, "---")
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	case "name":
		for _, o := range objs {
			fmt.Fprintln(w, objectName(o))
		}
		return nil
	}
	return printTable(w, objs, output == "wide", allNamespaces)
}

// printJSON writes the JSON document b indented, with a final newline.
func printJSON(w io.Writer, b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}

// columns of a kind's table: headers and a row function, and the extra
// columns of -o wide (REVISION and LABELS when a kind names none).
type columns struct {
	headers []string
	row     func(o *pb.Object, now time.Time) []string
	wide    []string
	wideRow func(o *pb.Object) []string
}

// tables holds the table layout of each kind; a new kind adds an entry
// (workload kinds are in tables.go).
var tables = map[string]columns{
	"Namespace": {
		headers: []string{"NAME", "STATUS", "AGE"},
		row: func(o *pb.Object, now time.Time) []string {
			return []string{o.GetName(), "Active", object.Age(o.GetCreateTimeUnixNano(), now)}
		},
	},
	"ConfigMap": {
		headers: []string{"NAME", "DATA", "AGE"},
		row: func(o *pb.Object, now time.Time) []string {
			var spec struct {
				Data       map[string]any `json:"data"`
				BinaryData map[string]any `json:"binaryData"`
			}
			_ = json.Unmarshal(o.GetSpec(), &spec)
			return []string{o.GetName(), fmt.Sprint(len(spec.Data) + len(spec.BinaryData)), object.Age(o.GetCreateTimeUnixNano(), now)}
		},
	},
}

func printTable(w io.Writer, objs []*pb.Object, wide, allNamespaces bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	now := time.Now()
	lastKind := ""
	for _, o := range objs {
		cols, ok := tables[o.GetKind()]
		if !ok {
			cols = columns{headers: []string{"NAME", "AGE"}, row: func(o *pb.Object, now time.Time) []string {
				return []string{o.GetName(), object.Age(o.GetCreateTimeUnixNano(), now)}
			}}
		}
		k, _ := object.KindFor(o.GetKind())
		showNS := allNamespaces && k.Namespaced
		if o.GetKind() != lastKind {
			if lastKind != "" {
				fmt.Fprintln(tw)
			}
			h := cols.headers
			if showNS {
				h = append([]string{"NAMESPACE"}, h...)
			}
			if wide {
				if cols.wide != nil {
					h = append(h, cols.wide...)
				} else {
					h = append(h, "REVISION", "LABELS")
				}
			}
			fmt.Fprintln(tw, strings.Join(h, "\t"))
			lastKind = o.GetKind()
		}
		row := cols.row(o, now)
		if showNS {
			row = append([]string{o.GetNamespace()}, row...)
		}
		if wide {
			if cols.wideRow != nil {
				row = append(row, cols.wideRow(o)...)
			} else {
				row = append(row, fmt.Sprint(o.GetResourceVersion()), labelString(o.GetLabels()))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func labelString(l map[string]string) string {
	if len(l) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}
