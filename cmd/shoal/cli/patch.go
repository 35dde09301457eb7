package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/object/manifest"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func newPatchCmd(g *globals) *cobra.Command {
	var namespace, patch, selector string
	cmd := &cobra.Command{
		Use:   "patch (KIND NAME | KIND/NAME) (-p PATCH | --selector K=V,...)",
		Short: "Change fields of an object in place",
		Long: `Change fields of an object in place, atomically: the object is read,
patched and written back only if nobody changed it meanwhile (and read
again and re-patched if somebody did).

-p takes a JSON merge patch (RFC 7386) of the object as "get -o json" shows
it, for example '{"spec":{"replicas":3}}' or
'{"metadata":{"labels":{"tier":null}}}' (null removes a field). The result
is checked like a manifest; a patch that makes it invalid changes nothing.

--selector replaces a service's selector, which is how a blue/green switch
is done: every agent's proxy moves new connections to the newly selected
pods in one step, and the same command with the old selector rolls back:

  shoal patch service web --selector app=web,version=green`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := parseRefs(args, true)
			if err != nil {
				return err
			}
			if len(refs) != 1 {
				return errors.New("patch: give one object")
			}
			r := refs[0]
			if (patch == "") == (selector == "") {
				return errors.New("patch: give exactly one of -p and --selector")
			}
			var mutate func(doc map[string]any) error
			switch {
			case selector != "":
				if r.kind.Name != "Service" {
					return fmt.Errorf("patch: --selector: %s has no selector to replace (services do)", r.kind.Plural)
				}
				sel, err := labels.ConvertSelectorToLabelsMap(selector)
				if err != nil || len(sel) == 0 {
					return fmt.Errorf("patch: --selector %q: want KEY=VALUE,... (%v)", selector, err)
				}
				mutate = func(doc map[string]any) error {
					m := map[string]any{}
					for k, v := range sel {
						m[k] = v
					}
					subMap(doc, "spec")["selector"] = m
					return nil
				}
			default:
				var p any
				if err := json.Unmarshal([]byte(patch), &p); err != nil {
					return fmt.Errorf("patch: -p: not JSON: %v", err)
				}
				pm, ok := p.(map[string]any)
				if !ok {
					return errors.New("patch: -p: want a JSON object")
				}
				mutate = func(doc map[string]any) error {
					for _, f := range []string{"apiVersion", "kind"} {
						if _, ok := pm[f]; ok {
							return fmt.Errorf("patch: -p: %s cannot be patched", f)
						}
					}
					if md, ok := pm["metadata"].(map[string]any); ok {
						for _, f := range []string{"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp"} {
							if _, ok := md[f]; ok {
								return fmt.Errorf("patch: -p: metadata.%s cannot be patched", f)
							}
						}
					}
					mergePatch(doc, pm)
					return nil
				}
			}
			c, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			ns := ""
			if r.kind.Namespaced {
				ns = namespaceOr(namespace)
			}
			if _, _, err := updateObject(ctx, c, r.kind.Name, ns, r.name, func(cur *pb.Object) (*pb.Object, error) {
				return patched(cur, mutate)
			}); err != nil {
				return c.Explain(err)
			}
			fmt.Fprintf(g.stdout, "%s/%s patched\n", strings.ToLower(r.kind.Name), r.name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&patch, "patch", "p", "", "a JSON merge patch of the object")
	cmd.Flags().StringVar(&selector, "selector", "", "a service's new selector, KEY=VALUE,...")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

// patched renders cur as a manifest, lets mutate change it, and decodes
// the result as a manifest (so it is checked like one): labels,
// annotations and spec come from it, identity and owners from cur.
func patched(cur *pb.Object, mutate func(doc map[string]any) error) (*pb.Object, error) {
	b, err := object.ToJSON(cur)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	delete(doc, "status")
	if err := mutate(doc); err != nil {
		return nil, err
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	objs, err := manifest.Decode(manifest.Source{Name: "patch", Data: out})
	if err != nil {
		return nil, fmt.Errorf("patch: the patched %s is not valid: %w", strings.ToLower(cur.GetKind()), err)
	}
	if len(objs) != 1 || objs[0].GetKind() != cur.GetKind() || objs[0].GetName() != cur.GetName() || objs[0].GetNamespace() != cur.GetNamespace() {
		return nil, errors.New("patch: the patch changed what object this is")
	}
	next := objs[0]
	next.Uid, next.OwnerReferences = cur.GetUid(), cur.GetOwnerReferences()
	return next, nil
}

// mergePatch applies an RFC 7386 JSON merge patch to doc in place: null
// removes a member, objects merge recursively, anything else replaces.
func mergePatch(doc, patch map[string]any) {
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			dv, ok := doc[k].(map[string]any)
			if !ok {
				dv = map[string]any{}
			}
			mergePatch(dv, pv)
			doc[k] = dv
		default:
			doc[k] = v
		}
	}
}
