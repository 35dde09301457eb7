package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/object/manifest"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func newApplyCmd(g *globals) *cobra.Command {
	var files []string
	var output string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update objects from Kubernetes YAML (all documents in one transaction)",
		Long: `Create or update objects from Kubernetes manifests: files, directories (every
.yaml, .yml and .json in them) or - for standard input. All documents of all
files are applied in one transaction: all objects or none. A document that
sets metadata.resourceVersion is applied only if the stored object is still
at that revision.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("apply: -f is required")
			}
			if err := checkOutput(output, "", "name", "json", "yaml"); err != nil {
				return err
			}
			objs, err := manifest.DecodeFiles(files, g.stdin)
			if err != nil {
				return err
			}
			if len(objs) == 0 {
				return fmt.Errorf("apply: no objects in %s", strings.Join(files, ", "))
			}
			req := &pb.TxnRequest{}
			for _, o := range objs {
				op := &pb.Op{Type: pb.Op_PUT, Object: o, ExpectRevision: o.GetResourceVersion()}
				o.ResourceVersion = 0
				req.Ops = append(req.Ops, op)
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Txn(ctx, req)
			if err != nil {
				return c.Explain(err)
			}
			var applied []*pb.Object
			for _, r := range resp.GetResults() {
				applied = append(applied, r.GetObject())
			}
			if output != "" {
				return printObjects(g.stdout, applied, output, len(applied) == 1, false)
			}
			for _, r := range resp.GetResults() {
				verb := "configured"
				switch {
				case r.GetCreated():
					verb = "created"
				case r.GetUnchanged():
					verb = "unchanged"
				}
				fmt.Fprintf(g.stdout, "%s %s\n", objectName(r.GetObject()), verb)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (repeatable)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "print the applied objects: name, json or yaml")
	return cmd
}

func newDeleteCmd(g *globals) *cobra.Command {
	var files []string
	var namespace string
	var ignoreNotFound bool
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME... | KIND/NAME... | -f FILE)",
		Short: "Delete objects by name or by the manifests that made them (one transaction)",
		RunE: func(cmd *cobra.Command, args []string) error {
			var targets []*pb.Object
			switch {
			case len(files) > 0 && len(args) > 0:
				return fmt.Errorf("delete: give either -f or names, not both")
			case len(files) > 0:
				objs, err := manifest.DecodeFiles(files, g.stdin)
				if err != nil {
					return err
				}
				for _, o := range objs {
					targets = append(targets, &pb.Object{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()})
				}
			default:
				refs, err := parseRefs(args, true)
				if err != nil {
					return err
				}
				for _, r := range refs {
					ns := ""
					if r.kind.Namespaced {
						ns = namespaceOr(namespace)
					}
					targets = append(targets, &pb.Object{Kind: r.kind.Name, Namespace: ns, Name: r.name})
				}
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			if ignoreNotFound {
				targets, err = existing(ctx, c, targets)
				if err != nil {
					return c.Explain(err)
				}
				if len(targets) == 0 {
					return nil
				}
			}
			req := &pb.TxnRequest{}
			for _, t := range targets {
				req.Ops = append(req.Ops, &pb.Op{Type: pb.Op_DELETE, Object: t})
			}
			if _, err := c.Txn(ctx, req); err != nil {
				return c.Explain(err)
			}
			for _, t := range targets {
				k, _ := object.KindFor(t.GetKind())
				fmt.Fprintf(g.stdout, "%s %q deleted\n", strings.ToLower(k.Name), t.GetName())
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (repeatable)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat objects that do not exist as deleted")
	return cmd
}

// existing keeps the targets that exist now.
func existing(ctx context.Context, c *client.Conn, targets []*pb.Object) ([]*pb.Object, error) {
	var out []*pb.Object
	for _, t := range targets {
		_, err := c.Get(ctx, &pb.GetRequest{Kind: t.GetKind(), Namespace: t.GetNamespace(), Name: t.GetName(),
			Read: &pb.ReadOptions{Linearizable: true}})
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// ref is a KIND NAME pair from the command line.
type ref struct {
	kind object.Kind
	name string
}

// parseRefs reads "KIND NAME..." or "KIND/NAME ...". With needName, a kind
// alone is an error.
func parseRefs(args []string, needName bool) ([]ref, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("a kind is required (%s)", knownKinds())
	}
	if strings.Contains(args[0], "/") {
		var refs []ref
		for _, a := range args {
			kindName, name, ok := strings.Cut(a, "/")
			if !ok || name == "" {
				return nil, fmt.Errorf("%q: want KIND/NAME", a)
			}
			k, err := lookupKind(kindName)
			if err != nil {
				return nil, err
			}
			refs = append(refs, ref{kind: k, name: name})
		}
		return refs, nil
	}
	k, err := lookupKind(args[0])
	if err != nil {
		return nil, err
	}
	if len(args) == 1 {
		if needName {
			return nil, fmt.Errorf("a name is required after %q", args[0])
		}
		return []ref{{kind: k}}, nil
	}
	var refs []ref
	for _, name := range args[1:] {
		refs = append(refs, ref{kind: k, name: name})
	}
	return refs, nil
}

func lookupKind(s string) (object.Kind, error) {
	k, ok := object.Lookup(s)
	if !ok || k.Internal {
		return object.Kind{}, fmt.Errorf("unknown kind %q (known: %s)", s, knownKinds())
	}
	return k, nil
}

func knownKinds() string {
	var names []string
	for _, k := range object.Kinds() {
		if !k.Internal {
			names = append(names, k.Plural)
		}
	}
	return strings.Join(names, ", ")
}

// kindsHelp lists the kinds get accepts for help text: each plural with its
// short names, then endpoints, which are computed rather than stored.
func kindsHelp() string {
	var parts []string
	for _, k := range object.Kinds() {
		if k.Internal {
			continue
		}
		s := k.Plural
		if len(k.ShortNames) > 0 {
			s += " (" + strings.Join(k.ShortNames, ", ") + ")"
		}
		parts = append(parts, s)
	}
	parts = append(parts, "endpoints (ep; computed from services and pods, read only)")
	return wrapWords("Kinds: "+strings.Join(parts, ", ")+".", 78)
}

// wrapWords breaks s into lines of at most width characters at spaces.
func wrapWords(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		switch {
		case i == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

func namespaceOr(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// objectName is kubectl's "kind/name".
func objectName(o *pb.Object) string {
	return strings.ToLower(o.GetKind()) + "/" + o.GetName()
}

func checkOutput(o string, allowed ...string) error {
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	var names []string
	for _, a := range allowed {
		if a != "" {
			names = append(names, a)
		}
	}
	return fmt.Errorf("-o %q: want one of %s", o, strings.Join(names, ", "))
}
