package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func newDescribeCmd(g *globals) *cobra.Command {
	var namespace, selector string
	var read readFlags
	cmd := &cobra.Command{
		Use:   "describe KIND [NAME...] | KIND/NAME...",
		Short: "Show objects in detail",
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args, false)
			if err != nil {
				return err
			}
			ro, err := read.options()
			if err != nil {
				return err
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			var objs []*pb.Object
			if refs[0].name == "" {
				k := refs[0].kind
				ns := ""
				if k.Namespaced {
					ns = namespaceOr(namespace)
				}
				resp, err := c.List(ctx, &pb.ListRequest{Kind: k.Name, Namespace: ns, LabelSelector: selector, Read: ro})
				if err != nil {
					return c.Explain(err)
				}
				objs = resp.GetObjects()
			} else {
				for _, r := range refs {
					o, err := getOne(ctx, c, r, namespace, ro)
					if err != nil {
						return c.Explain(err)
					}
					objs = append(objs, o)
				}
			}
			for i, o := range objs {
				if i > 0 {
					fmt.Fprintln(g.stdout)
				}
				describe(g.stdout, o, time.Now())
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector")
	read.add(cmd)
	return cmd
}

// describe prints the kubectl-style description of an object.
func describe(w io.Writer, o *pb.Object, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	k, _ := object.KindFor(o.GetKind())
	fmt.Fprintf(tw, "Name:\t%s\n", o.GetName())
	if k.Namespaced {
		fmt.Fprintf(tw, "Namespace:\t%s\n", o.GetNamespace())
	}
	fmt.Fprintf(tw, "Kind:\t%s\n", o.GetKind())
	fmt.Fprintf(tw, "Labels:\t%s\n", multiline(o.GetLabels()))
	fmt.Fprintf(tw, "Annotations:\t%s\n", multiline(o.GetAnnotations()))
	fmt.Fprintf(tw, "UID:\t%s\n", o.GetUid())
	fmt.Fprintf(tw, "Revision:\t%d (created at %d)\n", o.GetResourceVersion(), o.GetCreateRevision())
	fmt.Fprintf(tw, "Generation:\t%d\n", o.GetGeneration())
	created := time.Unix(0, o.GetCreateTimeUnixNano()).UTC()
	fmt.Fprintf(tw, "Created:\t%s (%s ago)\n", created.Format(time.RFC1123Z), object.Age(o.GetCreateTimeUnixNano(), now))
	for _, ref := range o.GetOwnerReferences() {
		fmt.Fprintf(tw, "Controlled By:\t%s/%s\n", ref.GetKind(), ref.GetName())
	}
	_ = tw.Flush()
	if describeWorkload(w, o, now) {
		return
	}
	switch o.GetKind() {
	case "Namespace":
		fmt.Fprintln(w, "Status:      Active")
	case "ConfigMap":
		var spec struct {
			Data       map[string]string `json:"data"`
			BinaryData map[string]string `json:"binaryData"`
		}
		_ = json.Unmarshal(o.GetSpec(), &spec)
		fmt.Fprintln(w, "\nData\n====")
		for _, key := range sortedKeys(spec.Data) {
			fmt.Fprintf(w, "%s:\n----\n%s\n\n", key, spec.Data[key])
		}
		fmt.Fprintln(w, "\nBinaryData\n====")
		for _, key := range sortedKeys(spec.BinaryData) {
			fmt.Fprintf(w, "%s: %d bytes (base64)\n", key, len(spec.BinaryData[key]))
		}
	}
}

func multiline(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, "\n\t")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
