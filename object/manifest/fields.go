package manifest

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// fieldTree is the set of JSON paths of a kind that Shoal implements. It is
// built from path strings:
//
//	"data"                          data and everything below it
//	"metadata.ownerReferences[].uid" a list whose elements may hold uid
//	"metadata.labels.*"              any key ("*") of a map
//	"spec{}"                         spec is an object with only the fields
//	                                 listed below it, possibly none
//
// A path accepts everything under it, so "metadata.labels" and
// "metadata.labels.x" together accept all labels; to accept only some fields
// of an object, list only its fields.
type fieldTree struct {
	open     bool                  // everything below is accepted
	list     bool                  // the value is a list of elem
	elem     *fieldTree            // element of a list
	children map[string]*fieldTree // the only accepted fields of an object
}

func newFields(paths ...string) *fieldTree {
	root := &fieldTree{children: map[string]*fieldTree{}}
	for _, p := range paths {
		n := root
		segs := strings.Split(p, ".")
		for i, seg := range segs {
			if n.open {
				break // a shorter path already accepts everything here
			}
			closed := strings.HasSuffix(seg, "{}")
			seg = strings.TrimSuffix(seg, "{}")
			list := strings.HasSuffix(seg, "[]")
			seg = strings.TrimSuffix(seg, "[]")
			if n.children == nil {
				n.children = map[string]*fieldTree{}
			}
			c := n.children[seg]
			if c == nil {
				c = &fieldTree{}
				n.children[seg] = c
			}
			if list {
				c.list = true
				if c.elem == nil {
					c.elem = &fieldTree{}
				}
				c = c.elem
			}
			if i == len(segs)-1 {
				switch {
				case !closed:
					c.open, c.children = true, nil
				case c.children == nil && !c.open:
					c.children = map[string]*fieldTree{}
				}
			}
			n = c
		}
	}
	return root
}

// check walks a decoded JSON value and reports the first field, in sorted
// order, that is set but not in the tree. Zero values (null, false, 0, "",
// empty objects and lists) are not reported: they ask for nothing.
func (t *fieldTree) check(v any, path string) *fieldErr {
	switch {
	case t == nil || t.open:
		return nil
	case t.list:
		l, _ := v.([]any)
		for i, e := range l {
			if err := t.elem.check(e, join(path, "["+strconv.Itoa(i)+"]")); err != nil {
				return err
			}
		}
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok || t.children == nil {
		return nil // a type mismatch is the typed decoder's to report
	}
	for _, k := range sortedKeys(m) {
		c := t.children[k]
		if c == nil {
			c = t.children["*"]
		}
		if c == nil {
			if isZero(m[k]) {
				continue
			}
			return errAt(join(path, k), "not supported")
		}
		if err := c.check(m[k], join(path, k)); err != nil {
			return err
		}
	}
	return nil
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case int64:
		return v == 0
	case float64:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		for _, e := range v {
			if !isZero(e) {
				return false
			}
		}
		return true
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// remove deletes the dotted object paths (no lists) from v. It is how
// accepted-but-ignored fields leave a document before strict decoding.
func remove(v map[string]any, paths []string) {
	for _, p := range paths {
		m := v
		segs := strings.Split(p, ".")
		for _, seg := range segs[:len(segs)-1] {
			m, _ = m[seg].(map[string]any)
			if m == nil {
				break
			}
		}
		if m != nil {
			delete(m, segs[len(segs)-1])
		}
	}
}
