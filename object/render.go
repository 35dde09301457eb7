package object

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/proto/shoalpb"
	"sigs.k8s.io/yaml"
)

// reserved are the top-level fields of the Kubernetes JSON that come from
// Object's own fields; Object.spec must not carry them.
var reserved = []string{"apiVersion", "kind", "metadata", "status"}

// meta is the rendered metadata. Field order is the order kubectl users see.
type meta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace,omitempty"`
	UID               string            `json:"uid,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	Generation        int64             `json:"generation,omitempty"`
	CreationTimestamp string            `json:"creationTimestamp,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	OwnerReferences   []ownerRef        `json:"ownerReferences,omitempty"`
}

type ownerRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
	Controller bool   `json:"controller,omitempty"`
}

// ToJSON renders o as the Kubernetes JSON a kubectl user expects from
// `get -o json`: apiVersion, kind, metadata, the fields of o.spec at the top
// level, and status. Map keys come out sorted, so equal objects render to
// equal bytes.
func ToJSON(o *shoalpb.Object) ([]byte, error) {
	doc, err := document(o)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", KeyOf(o), err)
	}
	return json.Marshal(doc)
}

// ToYAML renders o like ToJSON, as YAML (`get -o yaml`).
func ToYAML(o *shoalpb.Object) ([]byte, error) {
	j, err := ToJSON(o)
	if err != nil {
		return nil, err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("render %s as YAML: %w", KeyOf(o), err)
	}
	return y, nil
}

// ListJSON renders objs as a Kubernetes List:
// {"apiVersion":"v1","kind":"List","items":[...]}. An empty list has
// "items":[], never null.
func ListJSON(objs []*shoalpb.Object) ([]byte, error) {
	items := make([]json.RawMessage, 0, len(objs))
	for _, o := range objs {
		j, err := ToJSON(o)
		if err != nil {
			return nil, err
		}
		items = append(items, j)
	}
	return json.Marshal(struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}{"v1", "List", items})
}

func document(o *shoalpb.Object) (map[string]any, error) {
	if o == nil {
		return nil, fmt.Errorf("nil object")
	}
	doc := map[string]any{}
	if len(o.Spec) > 0 {
		d := json.NewDecoder(bytes.NewReader(o.Spec))
		d.UseNumber() // keep large integers exact
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("spec is not a JSON object: %w", err)
		}
		if d.More() {
			return nil, fmt.Errorf("spec has data after its JSON object")
		}
		if doc == nil { // spec was JSON null
			doc = map[string]any{}
		}
		for _, r := range reserved {
			if _, ok := doc[r]; ok {
				return nil, fmt.Errorf("spec has reserved field %q", r)
			}
		}
	}
	doc["apiVersion"] = o.ApiVersion
	doc["kind"] = o.Kind
	doc["metadata"] = metadata(o)

	status := o.Status
	if len(status) == 0 && o.Kind == "Namespace" {
		// Shoal has no namespace lifecycle: a stored namespace is active.
		status = []byte(`{"phase":"Active"}`)
	}
	if len(status) > 0 {
		if !json.Valid(status) {
			return nil, fmt.Errorf("status is not valid JSON")
		}
		doc["status"] = json.RawMessage(status)
	}
	return doc, nil
}

func metadata(o *shoalpb.Object) meta {
	m := meta{
		Name:        o.Name,
		UID:         o.Uid,
		Generation:  o.Generation,
		Labels:      o.Labels,
		Annotations: o.Annotations,
	}
	// Unknown kinds render the namespace they carry rather than hide it.
	if k, ok := KindFor(o.Kind); !ok || k.Namespaced {
		m.Namespace = o.Namespace
	}
	if o.ResourceVersion != 0 {
		m.ResourceVersion = strconv.FormatUint(o.ResourceVersion, 10)
	}
	if o.CreateTimeUnixNano != 0 {
		m.CreationTimestamp = time.Unix(0, o.CreateTimeUnixNano).UTC().Format(time.RFC3339)
	}
	for _, r := range o.OwnerReferences {
		m.OwnerReferences = append(m.OwnerReferences, ownerRef{
			APIVersion: r.ApiVersion, Kind: r.Kind, Name: r.Name, UID: r.Uid, Controller: r.Controller,
		})
	}
	return m
}
