package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// exitError carries a remote command's exit code out of Main without an
// error line (shoal exec exits with the command's code).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("command exited with code %d", e.code) }

// casAttempts bounds how often a read-modify-write is retried after another
// writer changed the object in between.
const casAttempts = 10

// errUnchanged, returned by a mutate function, leaves the object as it is.
var errUnchanged = errors.New("unchanged")

// updateObject reads an object (linearizably), lets mutate make the object
// to write from it, and writes that with a compare-and-swap on the
// resourceVersion it read, reading and mutating again when another writer
// got there first. mutate returning errUnchanged writes nothing; any other
// error is returned as it is, with nothing written. It returns the object
// as stored and whether it wrote.
func updateObject(ctx context.Context, c *client.Conn, kind, ns, name string, mutate func(cur *pb.Object) (*pb.Object, error)) (*pb.Object, bool, error) {
	for attempt := 1; ; attempt++ {
		resp, err := c.Get(ctx, &pb.GetRequest{Kind: kind, Namespace: ns, Name: name, Read: &pb.ReadOptions{Linearizable: true}})
		if err != nil {
			return nil, false, err
		}
		cur := resp.GetObject()
		next, err := mutate(cur)
		if errors.Is(err, errUnchanged) {
			return cur, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		tr, err := c.Txn(ctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: next, ExpectRevision: cur.GetResourceVersion()}}})
		if status.Code(err) == codes.Aborted && attempt < casAttempts {
			continue // changed since we read it: decide again on fresh state
		}
		if err != nil {
			return nil, false, err
		}
		return tr.GetResults()[0].GetObject(), true, nil
	}
}

// updateSpec is updateObject for a change of the object's body (the
// top-level fields other than metadata and status) as generic JSON.
func updateSpec(ctx context.Context, c *client.Conn, kind, ns, name string, mutate func(body map[string]any) error) (*pb.Object, error) {
	o, _, err := updateObject(ctx, c, kind, ns, name, func(o *pb.Object) (*pb.Object, error) {
		var body map[string]any
		if err := json.Unmarshal(o.GetSpec(), &body); err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, name, err)
		}
		if body == nil {
			body = map[string]any{}
		}
		if err := mutate(body); err != nil {
			return nil, err
		}
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		return &pb.Object{Kind: o.GetKind(), ApiVersion: o.GetApiVersion(), Namespace: o.GetNamespace(), Name: o.GetName(),
			Labels: o.GetLabels(), Annotations: o.GetAnnotations(), OwnerReferences: o.GetOwnerReferences(), Spec: b}, nil
	})
	return o, err
}

func subMap(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	if v == nil {
		v = map[string]any{}
		m[key] = v
	}
	return v
}

func newScaleCmd(g *globals) *cobra.Command {
	var replicas int
	var namespace string
	cmd := &cobra.Command{
		Use:   "scale (deployment|replicaset) NAME --replicas N",
		Short: "Set the number of replicas of a deployment or replica set",
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args, true)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("replicas") {
				return fmt.Errorf("scale: --replicas is required")
			}
			if replicas < 0 {
				return fmt.Errorf("--replicas %d: must be greater than or equal to 0", replicas)
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			for _, r := range refs {
				if r.kind.Name != "Deployment" && r.kind.Name != "ReplicaSet" {
					return fmt.Errorf("scale: %s cannot be scaled (deployments and replicasets can)", r.kind.Plural)
				}
				_, err := updateSpec(ctx, c, r.kind.Name, namespaceOr(namespace), r.name, func(body map[string]any) error {
					subMap(body, "spec")["replicas"] = replicas
					return nil
				})
				if err != nil {
					return c.Explain(err)
				}
				fmt.Fprintf(g.stdout, "%s/%s scaled\n", strings.ToLower(r.kind.Name)+"."+groupOf(r.kind), r.name)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&replicas, "replicas", 0, "the new number of replicas")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

func groupOf(k object.Kind) string {
	if g, _, ok := strings.Cut(k.APIVersion, "/"); ok {
		return g
	}
	return ""
}

func newCordonCmd(g *globals, unschedulable bool) *cobra.Command {
	use, verb := "cordon NODE", "cordoned"
	short := "Mark a node unschedulable"
	if !unschedulable {
		use, verb, short = "uncordon NODE", "uncordoned", "Mark a node schedulable again"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := setUnschedulable(ctx, c, args[0], unschedulable); err != nil {
				return c.Explain(err)
			}
			fmt.Fprintf(g.stdout, "node/%s %s\n", args[0], verb)
			return nil
		},
	}
}

func setUnschedulable(ctx context.Context, c *client.Conn, node string, v bool) error {
	_, err := updateSpec(ctx, c, "Node", "", node, func(body map[string]any) error {
		spec := subMap(body, "spec")
		if v {
			spec["unschedulable"] = true
		} else {
			delete(spec, "unschedulable")
		}
		return nil
	})
	return err
}

func newDrainCmd(g *globals) *cobra.Command {
	var force bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Cordon a node and evict its pods so their controllers place them elsewhere",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node := args[0]
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := setUnschedulable(ctx, c, node, true); err != nil {
				return c.Explain(err)
			}
			fmt.Fprintf(g.stdout, "node/%s cordoned\n", node)
			list, err := c.List(ctx, &pb.ListRequest{Kind: "Pod", Read: &pb.ReadOptions{Linearizable: true}})
			if err != nil {
				return c.Explain(err)
			}
			var victims []*pb.Object
			var unmanaged []string
			for _, o := range list.GetObjects() {
				var pod corev1.Pod
				if err := object.Decode(o, &pod); err != nil || pod.Spec.NodeName != node {
					continue
				}
				if !hasController(o) && !force {
					unmanaged = append(unmanaged, o.GetNamespace()+"/"+o.GetName())
					continue
				}
				victims = append(victims, o)
			}
			if len(unmanaged) > 0 {
				return fmt.Errorf("cannot drain %s: pods not managed by a controller would be lost (use --force): %s", node, strings.Join(unmanaged, ", "))
			}
			for _, o := range victims {
				fmt.Fprintf(g.stdout, "evicting pod %s/%s\n", o.GetNamespace(), o.GetName())
				_, err := c.Txn(ctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_DELETE, ExpectRevision: o.GetResourceVersion(),
					Object: &pb.Object{Kind: "Pod", Namespace: o.GetNamespace(), Name: o.GetName()}}}})
				if err != nil && status.Code(err) != codes.NotFound {
					return c.Explain(err)
				}
			}
			// Wait until the controllers' replacements are placed elsewhere.
			deadline := time.Now().Add(timeout)
			for time.Now().Before(deadline) {
				pending, err := pendingPods(ctx, c)
				if err != nil {
					return c.Explain(err)
				}
				if pending == 0 {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
			fmt.Fprintf(g.stdout, "node/%s drained\n", node)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "also delete pods that no controller will replace")
	cmd.Flags().DurationVar(&timeout, "wait", 30*time.Second, "how long to wait for replacements to be placed")
	return cmd
}

func hasController(o *pb.Object) bool {
	for _, r := range o.GetOwnerReferences() {
		if r.GetController() {
			return true
		}
	}
	return false
}

func pendingPods(ctx context.Context, c *client.Conn) (int, error) {
	list, err := c.List(ctx, &pb.ListRequest{Kind: "Pod", Read: &pb.ReadOptions{Linearizable: true}})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range list.GetObjects() {
		var pod corev1.Pod
		if object.Decode(o, &pod) == nil && pod.Spec.NodeName == "" && pod.Status.Phase == corev1.PodPending {
			n++
		}
	}
	return n, nil
}

func newLogsCmd(g *globals) *cobra.Command {
	var (
		container, namespace string
		follow, previous     bool
		tail                 int64
	)
	cmd := &cobra.Command{
		Use:   "logs POD [-c CONTAINER] [-f] [--previous]",
		Short: "Print a container's log, from whichever agent runs the pod",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client.Dial(g.server)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			if !follow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, g.timeout)
				defer cancel()
			}
			stream, err := c.Logs(ctx, &pb.LogsRequest{Namespace: namespaceOr(namespace), Pod: strings.TrimPrefix(args[0], "pod/"),
				Container: container, Follow: follow, Previous: previous, TailLines: tail})
			if err != nil {
				return c.Explain(err)
			}
			for {
				chunk, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					if ctx.Err() != nil && follow {
						return nil
					}
					return c.Explain(err)
				}
				if _, err := g.stdout.Write(chunk.GetData()); err != nil {
					return err
				}
			}
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "container name (needed when the pod has several)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming, across container restarts")
	cmd.Flags().BoolVarP(&previous, "previous", "p", false, "the log of the previous attempt of the container")
	cmd.Flags().Int64Var(&tail, "tail", 0, "only the last N lines")
	return cmd
}

func newExecCmd(g *globals) *cobra.Command {
	var container, namespace string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "exec POD [-c CONTAINER] -- COMMAND [ARGS...]",
		Short: "Run a command in a container and exit with its exit code",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("exec: want POD -- COMMAND [ARGS...]")
			}
			var in []byte
			if stdin {
				b, err := io.ReadAll(g.stdin)
				if err != nil {
					return err
				}
				in = b
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			stream, err := c.Exec(ctx, &pb.ExecRequest{Namespace: namespaceOr(namespace), Pod: strings.TrimPrefix(args[0], "pod/"),
				Container: container, Command: args[1:], Stdin: in})
			if err != nil {
				return c.Explain(err)
			}
			for {
				out, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return fmt.Errorf("exec: the agent ended the stream without an exit code")
				}
				if err != nil {
					return c.Explain(err)
				}
				_, _ = g.stdout.Write(out.GetStdout())
				_, _ = g.stderr.Write(out.GetStderr())
				if out.GetExited() {
					if code := int(out.GetExitCode()); code != 0 {
						return exitError{code: code}
					}
					return nil
				}
			}
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "container name (needed when the pod has several)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "pass standard input to the command")
	return cmd
}
