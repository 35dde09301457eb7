package cli

//lint:file-ignore SA1019 get endpoints prints core/v1 Endpoints, the shape kubectl users read; Kubernetes still serves it beside EndpointSlice.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Endpoints are not stored: every agent computes them from its replica
// (agent/endpoints), and get endpoints does the same on the client from
// the services and pods it lists.

// endpointsAliases are the names get accepts for endpoints, as kubectl.
var endpointsAliases = map[string]bool{"endpoints": true, "endpoint": true, "ep": true}

// endpointsArgs reports whether args ask for endpoints ("ep [NAME...]" or
// "ep/NAME..."), and the names asked for.
func endpointsArgs(args []string) (names []string, ok bool, err error) {
	if len(args) == 0 {
		return nil, false, nil
	}
	kind, _, slash := strings.Cut(args[0], "/")
	if !endpointsAliases[strings.ToLower(kind)] {
		return nil, false, nil
	}
	if !slash {
		return args[1:], true, nil
	}
	for _, a := range args {
		k, name, ok := strings.Cut(a, "/")
		if !ok || name == "" || !endpointsAliases[strings.ToLower(k)] {
			return nil, true, fmt.Errorf("%q: want endpoints/NAME (endpoints cannot be mixed with other kinds)", a)
		}
		names = append(names, name)
	}
	return names, true, nil
}

// endpointsQuery is what get endpoints was asked for.
type endpointsQuery struct {
	names         []string
	namespace     string
	allNamespaces bool
	selector      string
	output        string
	read          *pb.ReadOptions
}

// getEndpoints lists the services asked for and the pods of their
// namespaces through c, computes each service's endpoints and prints them.
func getEndpoints(ctx context.Context, g *globals, c *client.Conn, q endpointsQuery) error {
	ns := namespaceOr(q.namespace)
	if q.allNamespaces {
		ns = ""
	}
	var svcObjs []*pb.Object
	if len(q.names) == 0 {
		resp, err := c.List(ctx, &pb.ListRequest{Kind: "Service", Namespace: ns, LabelSelector: q.selector, Read: q.read})
		if err != nil {
			return c.Explain(err)
		}
		svcObjs = resp.GetObjects()
	} else {
		if q.selector != "" {
			return fmt.Errorf("-l cannot be used with names")
		}
		svcKind, _ := object.KindFor("Service")
		for _, name := range q.names {
			o, err := getOne(ctx, c, ref{kind: svcKind, name: name}, q.namespace, q.read)
			if isNotFound(err) {
				return fmt.Errorf("endpoints %q not found (no service of that name in namespace %s)", name, namespaceOr(q.namespace))
			}
			if err != nil {
				return c.Explain(err)
			}
			svcObjs = append(svcObjs, o)
		}
	}
	if len(svcObjs) == 0 && q.output == "" {
		where := ""
		if ns != "" {
			where = " in " + ns + " namespace"
		}
		fmt.Fprintf(g.stderr, "No resources found%s.\n", where)
		return nil
	}
	var pods []*corev1.Pod
	if len(svcObjs) > 0 {
		var err error
		if pods, err = listPods(ctx, c, ns, q.read); err != nil {
			return c.Explain(err)
		}
	}
	eps := make([]*corev1.Endpoints, 0, len(svcObjs))
	for _, o := range svcObjs {
		var svc corev1.Service
		if err := object.Decode(o, &svc); err != nil {
			return err
		}
		eps = append(eps, endpointsOf(&svc, pods))
	}
	single := len(q.names) == 1
	return printEndpoints(g.stdout, eps, q.output, single, q.allNamespaces, time.Now())
}

// printEndpoints writes computed endpoints in the format of get: a table,
// json or yaml of the Endpoints objects (a List unless single), or names.
func printEndpoints(w io.Writer, eps []*corev1.Endpoints, output string, single, allNamespaces bool, now time.Time) error {
	switch output {
	case "json":
		var v any
		if single && len(eps) == 1 {
			v = eps[0]
		} else {
			v = struct {
				APIVersion string              `json:"apiVersion"`
				Kind       string              `json:"kind"`
				Items      []*corev1.Endpoints `json:"items"`
			}{"v1", "List", eps}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("render endpoints as JSON: %w", err)
		}
		return printJSON(w, b)
	case "yaml":
		for i, ep := range eps {
			b, err := yaml.Marshal(ep)
			if err != nil {
				return fmt.Errorf("render endpoints %s/%s as YAML: %w", ep.Namespace, ep.Name, err)
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
		for _, ep := range eps {
			fmt.Fprintln(w, "endpoints/"+ep.Name)
		}
		return nil
	}
	return printEndpointsTable(w, eps, output == "wide", allNamespaces, now)
}
