package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/client"
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
			pods, err := podsForServices(ctx, c, objs, ro)
			if err != nil {
				return c.Explain(err)
			}
			evs := eventsFor(ctx, c, objs)
			for i, o := range objs {
				if i > 0 {
					fmt.Fprintln(g.stdout)
				}
				describe(g.stdout, o, pods, time.Now())
				printEvents(g.stdout, evs[o.GetUid()], time.Now())
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector")
	read.add(cmd)
	return cmd
}

// describe prints the kubectl-style description of an object. pods are
// those a Service's endpoints are computed from; other kinds ignore them.
func describe(w io.Writer, o *pb.Object, pods []*corev1.Pod, now time.Time) {
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
	case "Service":
		var svc corev1.Service
		if object.Decode(o, &svc) == nil {
			describeService(w, &svc, endpointsOf(&svc, pods))
		}
	case hpaKind:
		describeHPA(w, o)
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

// podsForServices lists the pods of the namespaces of the Services among
// objs, for their endpoints; nil when there is no Service.
func podsForServices(ctx context.Context, c *client.Conn, objs []*pb.Object, ro *pb.ReadOptions) ([]*corev1.Pod, error) {
	namespaces := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "Service" {
			namespaces[o.GetNamespace()] = true
		}
	}
	var pods []*corev1.Pod
	for _, ns := range slices.Sorted(maps.Keys(namespaces)) {
		p, err := listPods(ctx, c, ns, ro)
		if err != nil {
			return nil, err
		}
		pods = append(pods, p...)
	}
	return pods, nil
}

// listPods lists and decodes the pods of namespace ns ("" for all).
func listPods(ctx context.Context, c *client.Conn, ns string, ro *pb.ReadOptions) ([]*corev1.Pod, error) {
	resp, err := c.List(ctx, &pb.ListRequest{Kind: "Pod", Namespace: ns, Read: ro})
	if err != nil {
		return nil, fmt.Errorf("list pods for endpoints: %w", err)
	}
	pods := make([]*corev1.Pod, 0, len(resp.GetObjects()))
	for _, o := range resp.GetObjects() {
		p := &corev1.Pod{}
		if err := object.Decode(o, p); err != nil {
			return nil, err
		}
		pods = append(pods, p)
	}
	return pods, nil
}

// eventsFor fetches the events about objs, by the uid of the object they
// involve. Events are best effort: a failure to list them prints none.
func eventsFor(ctx context.Context, c *client.Conn, objs []*pb.Object) map[string][]*corev1.Event {
	out := map[string][]*corev1.Event{}
	namespaces := map[string]bool{}
	for _, o := range objs {
		ns := o.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		namespaces[ns] = true
	}
	for ns := range namespaces {
		resp, err := c.List(ctx, &pb.ListRequest{Kind: "Event", Namespace: ns})
		if err != nil {
			continue
		}
		for _, eo := range resp.GetObjects() {
			var ev corev1.Event
			if object.Decode(eo, &ev) == nil {
				out[string(ev.InvolvedObject.UID)] = append(out[string(ev.InvolvedObject.UID)], &ev)
			}
		}
	}
	return out
}

// printEvents prints the last events about an object, as kubectl describe.
func printEvents(w io.Writer, evs []*corev1.Event, now time.Time) {
	if len(evs) == 0 {
		fmt.Fprintln(w, "Events:      <none>")
		return
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].LastTimestamp.Before(&evs[j].LastTimestamp) })
	if len(evs) > 20 {
		evs = evs[len(evs)-20:]
	}
	fmt.Fprintln(w, "Events:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t---\t----\t-------")
	for _, ev := range evs {
		from := ev.Source.Component
		if ev.Source.Host != "" {
			from += ", " + ev.Source.Host
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", ev.Type, ev.Reason, object.Age(ev.LastTimestamp.UnixNano(), now), from, ev.Message)
	}
	_ = tw.Flush()
}
