package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

const hpaKind = "HorizontalPodAutoscaler"

func init() {
	tables[hpaKind] = columns{
		headers: []string{"NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"},
		row: func(o *pb.Object, now time.Time) []string {
			var h autoscalingv2.HorizontalPodAutoscaler
			_ = object.Decode(o, &h)
			ref := h.Spec.ScaleTargetRef
			return []string{o.GetName(), ref.Kind + "/" + ref.Name, hpaTargets(&h), fmt.Sprint(replicasOf(h.Spec.MinReplicas)),
				fmt.Sprint(h.Spec.MaxReplicas), fmt.Sprint(h.Status.CurrentReplicas), object.Age(o.GetCreateTimeUnixNano(), now)}
		},
	}
}

// hpaMetrics are the metrics h scales on: its own, or cpu at 80 % as
// Kubernetes defaults an HPA without metrics.
func hpaMetrics(h *autoscalingv2.HorizontalPodAutoscaler) []autoscalingv2.MetricSpec {
	if len(h.Spec.Metrics) > 0 {
		return h.Spec.Metrics
	}
	p := int32(80)
	return []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &p}}}}
}

// hpaCurrent is the current value of spec's metric in h's status, as kubectl
// prints it, or "<unknown>" before the first measurement.
func hpaCurrent(h *autoscalingv2.HorizontalPodAutoscaler, spec autoscalingv2.MetricSpec) (current, target string) {
	current = "<unknown>"
	if spec.Resource == nil {
		return current, "<unknown>"
	}
	t := spec.Resource.Target
	for _, st := range h.Status.CurrentMetrics {
		if st.Resource == nil || st.Resource.Name != spec.Resource.Name {
			continue
		}
		c := st.Resource.Current
		switch {
		case t.AverageValue != nil && c.AverageValue != nil:
			current = c.AverageValue.String()
		case t.AverageValue == nil && c.AverageUtilization != nil:
			current = fmt.Sprintf("%d%%", *c.AverageUtilization)
		}
	}
	switch {
	case t.AverageValue != nil:
		target = t.AverageValue.String()
	case t.AverageUtilization != nil:
		target = fmt.Sprintf("%d%%", *t.AverageUtilization)
	default:
		target = "<auto>"
	}
	return current, target
}

// hpaTargets is kubectl's TARGETS column: "cpu: 73%/50%", at most two
// metrics and a count of the others.
func hpaTargets(h *autoscalingv2.HorizontalPodAutoscaler) string {
	var list []string
	for _, m := range hpaMetrics(h) {
		cur, tgt := hpaCurrent(h, m)
		name := string(m.Type)
		if m.Resource != nil {
			name = string(m.Resource.Name)
		}
		list = append(list, fmt.Sprintf("%s: %s/%s", name, cur, tgt))
	}
	if len(list) > 2 {
		return strings.Join(list[:2], ", ") + fmt.Sprintf(" + %d more...", len(list)-2)
	}
	return strings.Join(list, ", ")
}

// describeHPA prints the HPA part of describe: target, metrics (current /
// target), bounds, behavior, replicas and conditions.
func describeHPA(w io.Writer, o *pb.Object) {
	var h autoscalingv2.HorizontalPodAutoscaler
	if object.Decode(o, &h) != nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	defer tw.Flush()
	ref := h.Spec.ScaleTargetRef
	fmt.Fprintf(tw, "Reference:\t%s/%s\n", ref.Kind, ref.Name)
	fmt.Fprintln(tw, "Metrics:\t( current / target )")
	for _, m := range hpaMetrics(&h) {
		if m.Resource == nil {
			continue
		}
		cur, tgt := hpaCurrent(&h, m)
		if m.Resource.Target.AverageValue != nil {
			fmt.Fprintf(tw, "  resource %s on pods:\t%s / %s\n", m.Resource.Name, cur, tgt)
			continue
		}
		for _, st := range h.Status.CurrentMetrics {
			if st.Resource != nil && st.Resource.Name == m.Resource.Name && st.Resource.Current.AverageValue != nil {
				cur += " (" + st.Resource.Current.AverageValue.String() + ")"
			}
		}
		fmt.Fprintf(tw, "  resource %s on pods  (as a percentage of request):\t%s / %s\n", m.Resource.Name, cur, tgt)
	}
	fmt.Fprintf(tw, "Min replicas:\t%d\n", replicasOf(h.Spec.MinReplicas))
	fmt.Fprintf(tw, "Max replicas:\t%d\n", h.Spec.MaxReplicas)
	if b := h.Spec.Behavior; b != nil {
		fmt.Fprintln(tw, "Behavior:")
		describeRules(tw, "Scale Up", b.ScaleUp)
		describeRules(tw, "Scale Down", b.ScaleDown)
	}
	fmt.Fprintf(tw, "%s pods:\t%d current / %d desired\n", ref.Kind, h.Status.CurrentReplicas, h.Status.DesiredReplicas)
	if t := h.Status.LastScaleTime; t != nil {
		fmt.Fprintf(tw, "Last Scale Time:\t%s\n", t.UTC().Format(time.RFC1123Z))
	}
	if len(h.Status.Conditions) == 0 {
		fmt.Fprintln(tw, "Conditions:\t<none>")
		return
	}
	fmt.Fprintln(tw, "Conditions:\n  Type\tStatus\tReason\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t------\t-------")
	for _, c := range h.Status.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

// describeRules prints one direction of the behavior; what it leaves out
// takes Kubernetes' defaults.
func describeRules(w io.Writer, name string, r *autoscalingv2.HPAScalingRules) {
	if r == nil {
		fmt.Fprintf(w, "  %s:\t(defaults)\n", name)
		return
	}
	fmt.Fprintf(w, "  %s:\n", name)
	if r.StabilizationWindowSeconds != nil {
		fmt.Fprintf(w, "    Stabilization Window:\t%d seconds\n", *r.StabilizationWindowSeconds)
	}
	if r.SelectPolicy != nil {
		fmt.Fprintf(w, "    Select Policy:\t%s\n", *r.SelectPolicy)
	}
	for _, p := range r.Policies {
		fmt.Fprintf(w, "    Policy:\t%s %d per %d seconds\n", p.Type, p.Value, p.PeriodSeconds)
	}
}

func newAutoscaleCmd(g *globals) *cobra.Command {
	var (
		namespace, name string
		minReplicas     int32
		maxReplicas     int32
		cpuPercent      int32
	)
	cmd := &cobra.Command{
		Use:   "autoscale (deployment|replicaset) NAME --max M [--min N] [--cpu-percent P]",
		Short: "Create a HorizontalPodAutoscaler for a deployment or replica set",
		Long: `Create a HorizontalPodAutoscaler (autoscaling/v2) that keeps the average CPU
use of a deployment's or replica set's pods at --cpu-percent of their requests
(80 if not given), with between --min (1) and --max replicas.

  shoal autoscale deployment web --min 1 --max 10 --cpu-percent 50`,
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args, true)
			if err != nil {
				return err
			}
			if len(refs) != 1 {
				return fmt.Errorf("autoscale: give one deployment or replica set")
			}
			r := refs[0]
			if r.kind.Name != "Deployment" && r.kind.Name != "ReplicaSet" {
				return fmt.Errorf("autoscale: %s cannot be scaled (deployments and replicasets can)", r.kind.Plural)
			}
			if !cmd.Flags().Changed("max") {
				return fmt.Errorf("autoscale: --max is required")
			}
			if name == "" {
				name = r.name
			}
			ns := namespaceOr(namespace)
			h := &autoscalingv2.HorizontalPodAutoscaler{
				TypeMeta:   metav1.TypeMeta{Kind: hpaKind, APIVersion: "autoscaling/v2"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: r.kind.Name, Name: r.name},
					MaxReplicas:    maxReplicas,
				},
			}
			if cmd.Flags().Changed("min") {
				h.Spec.MinReplicas = &minReplicas
			}
			if cmd.Flags().Changed("cpu-percent") {
				h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &cpuPercent}}}}
			}
			o, err := object.FromTyped(hpaKind, h)
			if err != nil {
				return err
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			// As kubectl, refuse a target that does not exist (an HPA
			// applied from a manifest may name one to come).
			if _, err := getOne(ctx, c, r, ns, &pb.ReadOptions{Linearizable: true}); err != nil {
				if isNotFound(err) {
					return fmt.Errorf("%s.%s %q not found in namespace %q", r.kind.Plural, groupOf(r.kind), r.name, ns)
				}
				return c.Explain(err)
			}
			if _, err := c.Txn(ctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: o, MustCreate: true}}}); err != nil {
				return c.Explain(err)
			}
			fmt.Fprintf(g.stdout, "horizontalpodautoscaler.autoscaling/%s autoscaled\n", name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.Int32Var(&minReplicas, "min", 1, "the fewest replicas")
	fl.Int32Var(&maxReplicas, "max", 0, "the most replicas (required)")
	fl.Int32Var(&cpuPercent, "cpu-percent", 80, "target average CPU use, in percent of the pods' requests")
	fl.StringVar(&name, "name", "", "name of the HorizontalPodAutoscaler (default: the target's)")
	fl.StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}
