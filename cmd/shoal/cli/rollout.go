package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/shoal-dev/shoal/agent/controller/deployment"
	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// restartedAtAnnotation is the pod template annotation `rollout restart`
// sets, as kubectl does: a new template, hence a new rollout.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// rollbackSkipAnnotations are the annotations `rollout undo` neither copies
// from the old ReplicaSet nor drops from the Deployment (kubectl's list).
var rollbackSkipAnnotations = map[string]bool{
	"kubectl.kubernetes.io/last-applied-configuration": true,
	deployment.RevisionAnnotation:                      true,
	"deployment.kubernetes.io/revision-history":        true,
	"deployment.kubernetes.io/desired-replicas":        true,
	"deployment.kubernetes.io/max-replicas":            true,
	"deprecated.deployment.rollback.to":                true,
}

func newRolloutCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND deployment/NAME",
		Short: "Follow, list, undo, pause, resume or restart a deployment's rollouts",
		Long: `Manage the rollout of a deployment, as kubectl rollout does.

  shoal rollout status deployment/web [--timeout 5m]
  shoal rollout history deployment/web [--revision 2]
  shoal rollout undo deployment/web [--to-revision 1]
  shoal rollout pause deployment/web
  shoal rollout resume deployment/web
  shoal rollout restart deployment/web

The deployment may also be given as two words: deployment web.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("rollout: want a subcommand: status, history, undo, pause, resume or restart")
		},
	}
	cmd.AddCommand(newRolloutStatusCmd(g), newRolloutHistoryCmd(g), newRolloutUndoCmd(g),
		newRolloutPauseCmd(g, true), newRolloutPauseCmd(g, false), newRolloutRestartCmd(g))
	return cmd
}

func newSetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set SUBCOMMAND",
		Short: "Change a field of an object in place (set image)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("set: want a subcommand: image")
		},
	}
	cmd.AddCommand(newSetImageCmd(g))
	return cmd
}

// deploymentArg reads "deployment/NAME" or "deployment NAME" at the start of
// args and returns the name and the arguments after it.
func deploymentArg(verb string, args []string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%s: want deployment/NAME or deployment NAME", verb)
	}
	kind, name, slash := strings.Cut(args[0], "/")
	rest := args[1:]
	if !slash {
		if len(args) < 2 {
			return "", nil, fmt.Errorf("%s: %q: want deployment/NAME or deployment NAME", verb, args[0])
		}
		name, rest = args[1], args[2:]
	}
	k, ok := object.Lookup(strings.TrimSuffix(strings.ToLower(kind), ".apps"))
	switch {
	case !ok || k.Internal:
		return "", nil, fmt.Errorf("%s: unknown kind %q (want deployment)", verb, kind)
	case k.Name != "Deployment":
		return "", nil, fmt.Errorf("%s: %s have no rollouts (deployments do)", verb, k.Plural)
	case name == "" || strings.Contains(name, "/"):
		return "", nil, fmt.Errorf("%s: %q is not a deployment name", verb, name)
	}
	return name, rest, nil
}

// deploymentRef is kubectl's name for a deployment in its messages.
func deploymentRef(name string) string { return "deployment.apps/" + name }

// getDeployment reads a Deployment, linearizably.
func getDeployment(ctx context.Context, c *client.Conn, ns, name string) (*appsv1.Deployment, error) {
	resp, err := c.Get(ctx, &pb.GetRequest{Kind: "Deployment", Namespace: ns, Name: name, Read: &pb.ReadOptions{Linearizable: true}})
	if err != nil {
		return nil, err
	}
	d := &appsv1.Deployment{}
	if err := object.Decode(resp.GetObject(), d); err != nil {
		return nil, err
	}
	return d, nil
}

// updateDeployment is updateObject on a typed Deployment: mutate changes a
// copy of the stored one. It returns the Deployment as written (or as
// stored when mutate returned errUnchanged) and whether it wrote.
func updateDeployment(ctx context.Context, c *client.Conn, ns, name string, mutate func(d *appsv1.Deployment) error) (*appsv1.Deployment, bool, error) {
	var out *appsv1.Deployment
	_, wrote, err := updateObject(ctx, c, "Deployment", ns, name, func(cur *pb.Object) (*pb.Object, error) {
		d := &appsv1.Deployment{}
		if err := object.Decode(cur, d); err != nil {
			return nil, err
		}
		out = d
		next := d.DeepCopy()
		if err := mutate(next); err != nil {
			return nil, err
		}
		o, err := object.FromTyped("Deployment", next)
		if err != nil {
			return nil, err
		}
		out = next
		return &pb.Object{Kind: o.GetKind(), ApiVersion: o.GetApiVersion(), Namespace: o.GetNamespace(), Name: o.GetName(),
			Labels: o.GetLabels(), Annotations: o.GetAnnotations(), OwnerReferences: o.GetOwnerReferences(), Spec: o.GetSpec()}, nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, wrote, nil
}

// recordFlag adds --record: whether a template change records its command
// line in the kubernetes.io/change-cause annotation, which rollout history
// shows. kubectl's --record is off by default and deprecated; Shoal records
// by default, so that a revision never shows the cause of an older one.
func recordFlag(cmd *cobra.Command, record *bool) {
	cmd.Flags().BoolVar(record, "record", true, "record the command line in the kubernetes.io/change-cause annotation (--record=false keeps it as it is)")
}

// changeCause is the command line as the change-cause annotation records it.
func changeCause(cmd *cobra.Command, args []string) string {
	return strings.Join(append([]string{cmd.CommandPath()}, args...), " ")
}

func newSetImageCmd(g *globals) *cobra.Command {
	var namespace string
	var record bool
	cmd := &cobra.Command{
		Use:   "image deployment/NAME CONTAINER=IMAGE [CONTAINER=IMAGE...]",
		Short: "Set the image of containers of a deployment's pod template, starting a rollout",
		Long: `Set the image of containers of a deployment's pod template, which starts a
rollout. CONTAINER may be * for every container. An unknown container name
is an error and changes nothing. The command line is recorded in the
kubernetes.io/change-cause annotation (rollout history shows it) unless
--record=false is given.

  shoal set image deployment/web web=registry.local/web:2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, pairs, err := deploymentArg("set image", args)
			if err != nil {
				return err
			}
			images, err := parseImages(pairs)
			if err != nil {
				return err
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			cause := changeCause(cmd, args)
			_, wrote, err := updateDeployment(ctx, c, namespaceOr(namespace), name, func(d *appsv1.Deployment) error {
				changed, err := setImages(d, images)
				if err != nil {
					return err
				}
				if !changed {
					return errUnchanged
				}
				if record {
					d.Annotations = withAnnotation(d.Annotations, deployment.ChangeCauseAnnotation, cause)
				}
				return nil
			})
			if err != nil {
				return c.Explain(err)
			}
			if !wrote {
				fmt.Fprintf(g.stdout, "%s image unchanged\n", deploymentRef(name))
				return nil
			}
			fmt.Fprintf(g.stdout, "%s image updated\n", deploymentRef(name))
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	recordFlag(cmd, &record)
	return cmd
}

// containerImage is one CONTAINER=IMAGE argument.
type containerImage struct{ container, image string }

func parseImages(pairs []string) ([]containerImage, error) {
	if len(pairs) == 0 {
		return nil, fmt.Errorf("set image: want at least one CONTAINER=IMAGE")
	}
	var out []containerImage
	seen := map[string]bool{}
	for _, p := range pairs {
		c, img, ok := strings.Cut(p, "=")
		switch {
		case !ok || c == "" || img == "":
			return nil, fmt.Errorf("set image: %q: want CONTAINER=IMAGE", p)
		case strings.ContainsAny(img, " \t\n"):
			return nil, fmt.Errorf("set image: %q: an image name has no spaces", p)
		case seen[c]:
			return nil, fmt.Errorf("set image: container %q is given twice", c)
		}
		seen[c] = true
		out = append(out, containerImage{c, img})
	}
	return out, nil
}

// setImages sets the images of d's template; it reports whether any changed.
// A container name the template does not have is an error, before anything
// is changed.
func setImages(d *appsv1.Deployment, images []containerImage) (bool, error) {
	cs := d.Spec.Template.Spec.Containers
	for _, ci := range images {
		if ci.container != "*" && !slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == ci.container }) {
			var names []string
			for _, c := range cs {
				names = append(names, c.Name)
			}
			return false, fmt.Errorf("set image: deployment %q has no container named %q (its containers: %s)",
				d.Name, ci.container, strings.Join(names, ", "))
		}
	}
	changed := false
	for _, ci := range images {
		for i := range cs {
			if (ci.container == "*" || cs[i].Name == ci.container) && cs[i].Image != ci.image {
				cs[i].Image = ci.image
				changed = true
			}
		}
	}
	return changed, nil
}

func withAnnotation(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}

func newRolloutStatusCmd(g *globals) *cobra.Command {
	var namespace string
	var timeout time.Duration
	var watch bool
	cmd := &cobra.Command{
		Use:   "status deployment/NAME [--timeout D]",
		Short: "Watch a deployment's rollout until it finishes",
		Long: `Watch a deployment's rollout until it finishes, as kubectl rollout status does.

On a terminal one line is redrawn in place: a bar of the desired replicas
with # for each updated one, then the desired count, how many pods are
updated, ready and available (old ones count too), and how many old pods
are left:

  web [####..] 6 desired: 4 updated, 7 ready, 6 available, 3 old

Otherwise a line like kubectl's is printed whenever it changes:

  Waiting for deployment "web" rollout to finish: 3 of 6 updated replicas are available...

It exits 0 with 'deployment "web" successfully rolled out', and non-zero
when the rollout exceeds its progress deadline (ProgressDeadlineExceeded) or
--timeout passes first (0, the default, waits as long as it takes).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, err := deploymentArg("rollout status", args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return fmt.Errorf("rollout status: unexpected arguments %q", rest)
			}
			c, err := client.Dial(g.server)
			if err != nil {
				return err
			}
			defer c.Close()
			p := &statusPrinter{w: g.stdout, tty: isTerminal(g.stdout)}
			err = watchRollout(cmd.Context(), c, namespaceOr(namespace), name, timeout, watch, p)
			p.end()
			return err
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	// Shadows the global --timeout: here it bounds the whole wait.
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: wait as long as it takes)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", true, "watch until the rollout finishes (false: print the state once)")
	return cmd
}

// errProgressDeadline marks a rollout that exceeded its progress deadline.
var errProgressDeadline = errors.New("exceeded its progress deadline")

// rolloutState is kubectl's reading of a deployment's rollout: a message,
// whether it is done, and an error when it will not finish by itself.
func rolloutState(d *appsv1.Deployment) (string, bool, error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...", false, nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == deployment.ReasonTimedOut {
			return "", false, fmt.Errorf("deployment %q %w (%s: %s)", d.Name, errProgressDeadline, c.Reason, c.Message)
		}
	}
	st, want := d.Status, replicasOf(d.Spec.Replicas)
	switch {
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, st.UpdatedReplicas, want), false, nil
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, st.Replicas-st.UpdatedReplicas), false, nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true, nil
}

// progressBar is the terminal line of rollout status: a bar of the
// desired replicas (scaled down to 30 cells), # for each updated one, then
// the desired, updated, ready and available counts (ready and available
// count old pods too, as the Deployment's status does, so they may exceed
// the desired count while a surge runs) and the old pods left.
func progressBar(d *appsv1.Deployment) string {
	want := replicasOf(d.Spec.Replicas)
	st := d.Status
	width := min(want, 30)
	done := 0
	if want > 0 {
		done = int(min(max(st.UpdatedReplicas, 0), want) * width / want)
	}
	bar := strings.Repeat("#", done) + strings.Repeat(".", int(width)-done)
	line := fmt.Sprintf("%s [%s] %d desired: %d updated, %d ready, %d available", d.Name, bar,
		want, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas)
	if old := st.Replicas - st.UpdatedReplicas; old > 0 {
		line += fmt.Sprintf(", %d old", old)
	}
	if d.Spec.Paused {
		line += " (paused)"
	}
	return line
}

// statusPrinter shows the rollout's progress: redrawn in place on a
// terminal, one line per change otherwise.
type statusPrinter struct {
	w    io.Writer
	tty  bool
	last string
	open bool // a progress line without its newline is on screen
}

func (p *statusPrinter) show(d *appsv1.Deployment, msg string) {
	line := msg
	if p.tty {
		line = progressBar(d)
	}
	if line == p.last {
		return
	}
	p.last = line
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		p.open = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// done prints the final line.
func (p *statusPrinter) done(msg string) {
	p.end()
	fmt.Fprintln(p.w, msg)
}

// end finishes a progress line left open, before an error is printed.
func (p *statusPrinter) end() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// watchRollout follows a deployment until its rollout is done, fails, or
// timeout passes. It reads the deployment, then watches its changes from
// the revision it read; a broken watch (an agent restarting) is resumed
// from a fresh read.
func watchRollout(ctx context.Context, c *client.Conn, ns, name string, timeout time.Duration, watch bool, p *statusPrinter) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last, paused := "", false // the last state seen
	// check prints d's state and reports whether watching may stop.
	check := func(d *appsv1.Deployment) (bool, error) {
		msg, done, err := rolloutState(d)
		if err != nil {
			return true, err
		}
		last, paused = msg, d.Spec.Paused
		if done {
			p.done(msg)
			return true, nil
		}
		p.show(d, msg)
		return false, nil
	}
	read := false // a first read failing is an error; later ones are retried
	for {
		if ctx.Err() != nil {
			seen := strings.TrimSuffix(strings.TrimPrefix(last, fmt.Sprintf("Waiting for deployment %q rollout to finish: ", name)), "...")
			if paused {
				seen += "; the deployment is paused"
			}
			return fmt.Errorf("timed out after %s waiting for deployment %q rollout to finish (last seen: %s)", timeout, name, seen)
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		resp, err := c.Get(rctx, &pb.GetRequest{Kind: "Deployment", Namespace: ns, Name: name, Read: &pb.ReadOptions{Linearizable: true}})
		cancel()
		if err != nil {
			if !read || status.Code(err) == codes.NotFound {
				return c.Explain(err)
			}
			// The agent may be restarting, or the cluster between leaders.
			pause(ctx, 500*time.Millisecond)
			continue
		}
		read = true
		d := &appsv1.Deployment{}
		if err := object.Decode(resp.GetObject(), d); err != nil {
			return err
		}
		if stop, err := check(d); stop || err != nil {
			return err
		}
		if !watch {
			p.end()
			return nil
		}
		stream, err := c.Watch(ctx, &pb.WatchRequest{Kind: "Deployment", Namespace: ns, FromRevision: resp.GetRevision()})
		if err != nil {
			pause(ctx, 500*time.Millisecond)
			continue
		}
		for {
			ev, err := stream.Recv()
			if err != nil {
				break // read afresh and watch again, unless the time is up
			}
			o := ev.GetObject()
			if o.GetName() != name {
				continue
			}
			if ev.GetType() == pb.WatchEvent_DELETED {
				return fmt.Errorf("deployment %q was deleted while its rollout was watched", name)
			}
			d := &appsv1.Deployment{}
			if err := object.Decode(o, d); err != nil {
				return err
			}
			if stop, err := check(d); stop || err != nil {
				return err
			}
		}
	}
}

// pause waits d or until ctx ends; it reports whether the full time passed.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ownedSets lists the ReplicaSets d controls, by revision.
func ownedSets(ctx context.Context, c *client.Conn, d *appsv1.Deployment) (map[int64]*appsv1.ReplicaSet, error) {
	list, err := c.List(ctx, &pb.ListRequest{Kind: "ReplicaSet", Namespace: d.Namespace, Read: &pb.ReadOptions{Linearizable: true}})
	if err != nil {
		return nil, err
	}
	out := map[int64]*appsv1.ReplicaSet{}
	for _, o := range list.GetObjects() {
		rs := &appsv1.ReplicaSet{}
		if object.Decode(o, rs) != nil {
			continue
		}
		owned := false
		for _, r := range rs.OwnerReferences {
			owned = owned || (r.Controller != nil && *r.Controller && r.UID == d.UID)
		}
		rev, err := strconv.ParseInt(rs.Annotations[deployment.RevisionAnnotation], 10, 64)
		if owned && err == nil && rev > 0 {
			out[rev] = rs
		}
	}
	return out, nil
}

func newRolloutHistoryCmd(g *globals) *cobra.Command {
	var namespace string
	var revision int64
	cmd := &cobra.Command{
		Use:   "history deployment/NAME [--revision N]",
		Short: "List a deployment's revisions and their change causes, or show one revision's pod template",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, err := deploymentArg("rollout history", args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return fmt.Errorf("rollout history: unexpected arguments %q", rest)
			}
			if revision < 0 {
				return fmt.Errorf("--revision %d: must be greater than or equal to 0", revision)
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			d, err := getDeployment(ctx, c, namespaceOr(namespace), name)
			if err != nil {
				return c.Explain(err)
			}
			sets, err := ownedSets(ctx, c, d)
			if err != nil {
				return c.Explain(err)
			}
			if revision > 0 {
				rs, ok := sets[revision]
				if !ok {
					return fmt.Errorf("rollout history: deployment %q has no revision %d (it has %s)", name, revision, revisionList(sets))
				}
				fmt.Fprintf(g.stdout, "%s with revision #%d\n", deploymentRef(name), revision)
				describeTemplate(g.stdout, &rs.Spec.Template)
				return nil
			}
			fmt.Fprintln(g.stdout, deploymentRef(name))
			printHistory(g.stdout, sets)
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().Int64Var(&revision, "revision", 0, "show the pod template of this revision")
	return cmd
}

func revisionList(sets map[int64]*appsv1.ReplicaSet) string {
	if len(sets) == 0 {
		return "none"
	}
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(sets)) {
		parts = append(parts, strconv.FormatInt(r, 10))
	}
	return strings.Join(parts, ", ")
}

// printHistory is kubectl's history table.
func printHistory(w io.Writer, sets map[int64]*appsv1.ReplicaSet) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "REVISION\tCHANGE-CAUSE")
	for _, r := range slices.Sorted(maps.Keys(sets)) {
		fmt.Fprintf(tw, "%d\t%s\n", r, orNone(sets[r].Annotations[deployment.ChangeCauseAnnotation]))
	}
}

// describeTemplate prints a pod template as kubectl's history --revision
// does.
func describeTemplate(w io.Writer, t *corev1.PodTemplateSpec) {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "Pod Template:")
	fmt.Fprintf(tw, "  Labels:\t%s\n", strings.ReplaceAll(orNone(labelString(t.Labels)), ",", "\n\t"))
	if len(t.Annotations) > 0 {
		var parts []string
		for _, k := range sortedKeys(t.Annotations) {
			parts = append(parts, k+": "+t.Annotations[k])
		}
		fmt.Fprintf(tw, "  Annotations:\t%s\n", strings.Join(parts, "\n\t"))
	}
	fmt.Fprintln(tw, "  Containers:")
	for _, c := range t.Spec.Containers {
		fmt.Fprintf(tw, "   %s:\n", c.Name)
		fmt.Fprintf(tw, "    Image:\t%s\n", c.Image)
		for _, port := range c.Ports {
			proto := port.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			fmt.Fprintf(tw, "    Port:\t%d/%s\n", port.ContainerPort, proto)
		}
		if cmd := append(slices.Clone(c.Command), c.Args...); len(cmd) > 0 {
			fmt.Fprintf(tw, "    Command:\t%s\n", strings.Join(cmd, " "))
		}
		if r := c.Resources; len(r.Requests) > 0 || len(r.Limits) > 0 {
			fmt.Fprintf(tw, "    Requests:\t%s\n", resources(r.Requests))
			fmt.Fprintf(tw, "    Limits:\t%s\n", resources(r.Limits))
		}
		if c.LivenessProbe != nil {
			fmt.Fprintf(tw, "    Liveness:\t%s\n", probeText(c.LivenessProbe))
		}
		if c.ReadinessProbe != nil {
			fmt.Fprintf(tw, "    Readiness:\t%s\n", probeText(c.ReadinessProbe))
		}
		if c.StartupProbe != nil {
			fmt.Fprintf(tw, "    Startup:\t%s\n", probeText(c.StartupProbe))
		}
		if len(c.Env) > 0 {
			fmt.Fprintln(tw, "    Environment:")
			for _, e := range c.Env {
				v := e.Value
				if e.ValueFrom != nil {
					switch {
					case e.ValueFrom.FieldRef != nil:
						v = "(" + e.ValueFrom.FieldRef.FieldPath + ")"
					case e.ValueFrom.ConfigMapKeyRef != nil:
						v = fmt.Sprintf("<set to the key %q of config map %q>", e.ValueFrom.ConfigMapKeyRef.Key, e.ValueFrom.ConfigMapKeyRef.Name)
					}
				}
				fmt.Fprintf(tw, "      %s:\t%s\n", e.Name, v)
			}
		}
	}
}

func newRolloutUndoCmd(g *globals) *cobra.Command {
	var namespace string
	var toRevision int64
	cmd := &cobra.Command{
		Use:   "undo deployment/NAME [--to-revision N]",
		Short: "Roll a deployment back to its previous revision, or to --to-revision",
		Long: `Roll a deployment back: its pod template becomes that of the previous
revision (or of --to-revision N), which starts a rollout. The old
revision's set becomes current again under a new, higher revision number,
as in Kubernetes, and its change-cause comes back with it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, err := deploymentArg("rollout undo", args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return fmt.Errorf("rollout undo: unexpected arguments %q", rest)
			}
			if toRevision < 0 {
				return fmt.Errorf("--to-revision %d: must be greater than or equal to 0", toRevision)
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			skipped := ""
			_, wrote, err := updateDeployment(ctx, c, namespaceOr(namespace), name, func(d *appsv1.Deployment) error {
				if d.Spec.Paused {
					return fmt.Errorf("rollout undo: deployment %q is paused; resume it first with 'shoal rollout resume deployment/%s'", name, name)
				}
				sets, err := ownedSets(ctx, c, d)
				if err != nil {
					return err
				}
				rs, rev, err := rollbackTarget(d, sets, toRevision)
				if err != nil {
					return err
				}
				if !rollback(d, rs) {
					skipped = fmt.Sprintf("%s skipped rollback (current template already matches revision %d)", deploymentRef(name), rev)
					return errUnchanged
				}
				return nil
			})
			if err != nil {
				return c.Explain(err)
			}
			if !wrote {
				fmt.Fprintln(g.stdout, skipped)
				return nil
			}
			fmt.Fprintf(g.stdout, "%s rolled back\n", deploymentRef(name))
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().Int64Var(&toRevision, "to-revision", 0, "the revision to roll back to (0: the previous one)")
	return cmd
}

// rollbackTarget picks the set of revision to (0: the one before the
// latest), as kubectl does.
func rollbackTarget(d *appsv1.Deployment, sets map[int64]*appsv1.ReplicaSet, to int64) (*appsv1.ReplicaSet, int64, error) {
	if to > 0 {
		rs, ok := sets[to]
		if !ok {
			return nil, 0, fmt.Errorf("rollout undo: deployment %q has no revision %d (it has %s)", d.Name, to, revisionList(sets))
		}
		return rs, to, nil
	}
	revs := slices.Sorted(maps.Keys(sets))
	if len(revs) < 2 {
		return nil, 0, fmt.Errorf("rollout undo: deployment %q has no previous revision to roll back to", d.Name)
	}
	prev := revs[len(revs)-2]
	return sets[prev], prev, nil
}

// rollback makes d's template rs's (less the pod-template-hash label), and
// its annotations rs's, keeping d's own bookkeeping ones (kubectl's
// rollback). It reports false when d already has that template.
func rollback(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	tmpl := rs.Spec.Template.DeepCopy()
	delete(tmpl.Labels, deployment.TemplateHashLabel)
	if apiequality.Semantic.DeepEqual(tmpl, &d.Spec.Template) {
		return false
	}
	d.Spec.Template = *tmpl
	ann := map[string]string{}
	for k, v := range d.Annotations {
		if rollbackSkipAnnotations[k] {
			ann[k] = v
		}
	}
	for k, v := range rs.Annotations {
		if !rollbackSkipAnnotations[k] {
			ann[k] = v
		}
	}
	d.Annotations = ann
	return true
}

func newRolloutPauseCmd(g *globals, pause bool) *cobra.Command {
	verb, use, short := "paused", "pause deployment/NAME", "Pause a deployment: template changes wait, a rollout under way stops where it is"
	if !pause {
		verb, use, short = "resumed", "resume deployment/NAME", "Resume a paused deployment's rollouts"
	}
	var namespace string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, err := deploymentArg("rollout "+strings.Fields(use)[0], args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return fmt.Errorf("rollout %s: unexpected arguments %q", strings.Fields(use)[0], rest)
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			_, _, err = updateDeployment(ctx, c, namespaceOr(namespace), name, func(d *appsv1.Deployment) error {
				switch {
				case pause && d.Spec.Paused:
					return fmt.Errorf("deployments.apps %q is already paused", name)
				case !pause && !d.Spec.Paused:
					return fmt.Errorf("deployments.apps %q is not paused", name)
				}
				d.Spec.Paused = pause
				return nil
			})
			if err != nil {
				return c.Explain(err)
			}
			fmt.Fprintf(g.stdout, "%s %s\n", deploymentRef(name), verb)
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

func newRolloutRestartCmd(g *globals) *cobra.Command {
	var namespace string
	var record bool
	cmd := &cobra.Command{
		Use:   "restart deployment/NAME",
		Short: "Replace every pod of a deployment by a rollout",
		Long: `Restart a deployment's pods by a rollout: the pod template gets the
annotation kubectl.kubernetes.io/restartedAt with the current time, as
kubectl does, so the strategy's limits apply.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, err := deploymentArg("rollout restart", args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return fmt.Errorf("rollout restart: unexpected arguments %q", rest)
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			cause := changeCause(cmd, args)
			at := time.Now().Format(time.RFC3339)
			_, _, err = updateDeployment(ctx, c, namespaceOr(namespace), name, func(d *appsv1.Deployment) error {
				if d.Spec.Paused {
					return fmt.Errorf("rollout restart: deployment %q is paused; resume it first with 'shoal rollout resume deployment/%s'", name, name)
				}
				t := &d.Spec.Template
				t.Annotations = withAnnotation(t.Annotations, restartedAtAnnotation, at)
				if record {
					d.Annotations = withAnnotation(d.Annotations, deployment.ChangeCauseAnnotation, cause)
				}
				return nil
			})
			if err != nil {
				return c.Explain(err)
			}
			fmt.Fprintf(g.stdout, "%s restarted\n", deploymentRef(name))
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	recordFlag(cmd, &record)
	return cmd
}

// describeStrategy prints a Deployment's rollout settings as kubectl
// describe does, the defaults filled in.
func describeStrategy(w io.Writer, d *appsv1.Deployment) {
	typ := d.Spec.Strategy.Type
	if typ == "" {
		typ = appsv1.RollingUpdateDeploymentStrategyType
	}
	fmt.Fprintf(w, "StrategyType:\t%s\n", typ)
	fmt.Fprintf(w, "MinReadySeconds:\t%d\n", d.Spec.MinReadySeconds)
	if typ == appsv1.RollingUpdateDeploymentStrategyType {
		surge, unavailable := deployment.DefaultMaxSurge.String(), deployment.DefaultMaxUnavailable.String()
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
			if ru.MaxSurge != nil {
				surge = ru.MaxSurge.String()
			}
			if ru.MaxUnavailable != nil {
				unavailable = ru.MaxUnavailable.String()
			}
		}
		fmt.Fprintf(w, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", unavailable, surge)
	}
	if d.Spec.Paused {
		fmt.Fprintln(w, "Paused:\ttrue")
	}
}
