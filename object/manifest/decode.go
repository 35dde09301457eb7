package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/proto/shoalpb"
	sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Source is one input of an apply: a file's name and bytes.
type Source struct {
	Name string // file name, or "-" for standard input
	Data []byte
}

// Decode decodes every object of a YAML or JSON stream: documents separated
// by "---" lines, JSON objects one after another, and "kind: List" documents
// whose items are objects. Documents holding only comments or whitespace are
// skipped and not counted; the others are numbered from 1 in Error.Doc.
// Namespaced objects without a namespace get "default". The same object
// twice in src is an error.
func Decode(src Source) ([]*shoalpb.Object, error) {
	return decodeAll([]Source{src})
}

// decodeAll decodes srcs in order as one apply.
func decodeAll(srcs []Source) ([]*shoalpb.Object, error) {
	var all []*shoalpb.Object
	seen := map[string]decoded{}
	for _, src := range srcs {
		ds, err := decodeSource(src)
		if err != nil {
			return nil, err
		}
		if err := unique(seen, ds); err != nil {
			return nil, err
		}
		all = append(all, objects(ds)...)
	}
	return all, nil
}

// decoded is an object and where it came from.
type decoded struct {
	obj  *shoalpb.Object
	file string
	doc  int
}

func objects(ds []decoded) []*shoalpb.Object {
	out := make([]*shoalpb.Object, len(ds))
	for i, d := range ds {
		out[i] = d.obj
	}
	return out
}

// unique refuses an object that is already in seen: an apply is one
// transaction, and two versions of one object in it are a mistake.
func unique(seen map[string]decoded, ds []decoded) error {
	for _, d := range ds {
		key := object.KeyOf(d.obj)
		if first, dup := seen[key]; dup {
			name := d.obj.Name
			if d.obj.Namespace != "" {
				name = d.obj.Namespace + "/" + name
			}
			return &Error{File: d.file, Doc: d.doc, Path: "metadata.name",
				Msg: fmt.Sprintf("%s %q is also defined in %s document %d", d.obj.Kind, name, first.file, first.doc)}
		}
		seen[key] = d
	}
	return nil
}

func decodeSource(src Source) ([]decoded, error) {
	docs, err := split(src.Data)
	if err != nil {
		return nil, &Error{File: src.Name, Msg: err.msg}
	}
	var out []decoded
	n := 0
	for _, d := range docs {
		jsonDocs, ferr := toJSON(d)
		if ferr != nil {
			return nil, &Error{File: src.Name, Doc: n + 1, Path: ferr.path, Msg: ferr.msg}
		}
		for _, j := range jsonDocs {
			n++
			objs, ferr := decodeJSON(j, fromManifest)
			if ferr != nil {
				return nil, &Error{File: src.Name, Doc: n, Path: ferr.path, Msg: ferr.msg}
			}
			for _, o := range objs {
				out = append(out, decoded{obj: o, file: src.Name, doc: n})
			}
		}
	}
	return out, nil
}

// rawDoc is one document of a stream and the line of the file it starts on.
type rawDoc struct {
	data []byte
	line int
}

// split cuts a stream at "---" and "..." lines and drops documents that hold
// only comments and whitespace. A separator may be followed by a comment but
// not by content.
func split(data []byte) ([]rawDoc, *fieldErr) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	var docs []rawDoc
	var cur bytes.Buffer
	start, line, blank := 1, 0, true
	flush := func(next int) {
		if !blank {
			docs = append(docs, rawDoc{data: bytes.Clone(cur.Bytes()), line: start})
		}
		cur.Reset()
		start, blank = next, true
	}
	for len(data) > 0 {
		line++
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		text := strings.TrimRight(string(l), "\r\n")
		if marker, rest, ok := separator(text); ok {
			if rest != "" && !strings.HasPrefix(rest, "#") {
				return nil, errAt("", fmt.Sprintf("line %d: content after %q is not supported; start the document on the next line", line, marker))
			}
			flush(line + 1)
			continue
		}
		if t := strings.TrimSpace(text); t != "" && !strings.HasPrefix(t, "#") {
			blank = false
		}
		cur.Write(l)
	}
	flush(0)
	return docs, nil
}

// separator reports whether a line starts or ends a YAML document, and what
// follows the marker on the line.
func separator(text string) (marker, rest string, ok bool) {
	for _, m := range []string{"---", "..."} {
		if text == m {
			return m, "", true
		}
		if strings.HasPrefix(text, m+" ") || strings.HasPrefix(text, m+"\t") {
			return m, strings.TrimSpace(text[len(m):]), true
		}
	}
	return "", "", false
}

var yamlLine = regexp.MustCompile(`\bline (\d+)\b`)

// toJSON converts one document to JSON. A document that is a series of JSON
// objects (kubectl accepts them without separators) gives one JSON document
// per object; YAML gives one.
func toJSON(d rawDoc) ([][]byte, *fieldErr) {
	if t := bytes.TrimLeft(d.data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		if docs, ok := jsonStream(d.data); ok {
			return docs, nil
		}
		// Not JSON after all (flow-style YAML such as {a: b}): fall through.
	}
	j, err := yaml.YAMLToJSONStrict(d.data)
	if err != nil {
		return nil, errAt("", yamlMessage(err, d.line))
	}
	return [][]byte{j}, nil
}

func jsonStream(data []byte) ([][]byte, bool) {
	var docs [][]byte
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return docs, true
		}
		if err != nil {
			return nil, false
		}
		docs = append(docs, raw)
	}
}

// yamlMessage turns a YAML library error into one line with line numbers
// counted from the start of the file rather than of the document.
func yamlMessage(err error, firstLine int) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "unmarshal errors:\n"); ok {
		var lines []string
		for _, l := range strings.Split(rest, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		msg = strings.Join(lines, "; ")
	}
	return yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(m[len("line "):])
		if err != nil {
			return m
		}
		return "line " + strconv.Itoa(n+firstLine-1)
	})
}

// listFields are the fields of a "kind: List" document.
var listFields = newFields("apiVersion", "kind", "items", "metadata")

// origin is where a document comes from.
type origin int

const (
	// fromManifest is a user's manifest: Lists are unpacked and internal
	// kinds refused.
	fromManifest origin = iota
	// fromAPI is an Object sent over gRPC: one object, of any kind,
	// internal ones included (the scheduler writes those).
	fromAPI
)

// decodeJSON decodes one JSON document: nothing for null, the items of a
// List in a manifest, else one object.
func decodeJSON(data []byte, from origin) ([]*shoalpb.Object, *fieldErr) {
	var v any
	strict, err := sjson.UnmarshalStrict(data, &v)
	if err != nil {
		return nil, errAt("", "invalid JSON: "+err.Error())
	}
	if len(strict) > 0 {
		return nil, strictErr(strict)
	}
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errAt("", "a document must be an object (a YAML mapping), not "+article(jsonKind(v)))
	}
	if m["kind"] == "List" && m["apiVersion"] == "v1" && from == fromManifest {
		return decodeList(m)
	}
	o, ferr := decodeObject(m, from)
	if ferr != nil {
		return nil, ferr
	}
	return []*shoalpb.Object{o}, nil
}

func decodeList(m map[string]any) ([]*shoalpb.Object, *fieldErr) {
	if err := listFields.check(m, ""); err != nil {
		return nil, err
	}
	items, ok := m["items"].([]any)
	if !ok && m["items"] != nil {
		return nil, errAt("items", "must be a list, not "+article(jsonKind(m["items"])))
	}
	var out []*shoalpb.Object
	for i, it := range items {
		path := "items[" + strconv.Itoa(i) + "]"
		im, ok := it.(map[string]any)
		if !ok {
			return nil, errAt(path, "must be an object, not "+article(jsonKind(it)))
		}
		if im["kind"] == "List" {
			return nil, errAt(join(path, "kind"), "a List cannot hold a List")
		}
		o, err := decodeObject(im, fromManifest)
		if err != nil {
			return nil, within(path, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// within puts err's path below path.
func within(path string, err *fieldErr) *fieldErr {
	p := path
	if err.path != "" {
		p = join(path, err.path)
	}
	return &fieldErr{path: p, msg: err.msg}
}

// decodeObject checks one object of a known kind strictly and converts it.
// m is consumed.
func decodeObject(m map[string]any, from origin) (*shoalpb.Object, *fieldErr) {
	kind, err := stringField(m, "kind")
	if err != nil {
		return nil, err
	}
	apiVersion, err := stringField(m, "apiVersion")
	if err != nil {
		return nil, err
	}
	k, known := object.KindFor(kind)
	dec, ok := decoders[kind]
	if !known || !ok {
		return nil, errAt("kind", fmt.Sprintf("kind %q (apiVersion %q): unknown kind", kind, apiVersion))
	}
	if k.Internal && from == fromManifest {
		return nil, errAt("kind", fmt.Sprintf("kind %q is internal to Shoal", kind))
	}
	if apiVersion != k.APIVersion {
		return nil, errAt("apiVersion", fmt.Sprintf("apiVersion %q does not serve kind %q", apiVersion, kind))
	}

	remove(m, ignoredFields)
	if dec.pre != nil {
		if err := dec.pre(m); err != nil {
			return nil, err
		}
	}
	data, jerr := json.Marshal(m)
	if jerr != nil { // cannot happen: m came from JSON
		return nil, errAt("", jerr.Error())
	}
	typed := dec.new()
	if err := checkValues(m, reflect.TypeOf(typed), ""); err != nil {
		return nil, err
	}
	strict, uerr := sjson.UnmarshalStrict(data, typed)
	if uerr != nil {
		return nil, typeErr(uerr, m)
	}
	if len(strict) > 0 {
		return nil, strictErr(strict)
	}
	if err := dec.fields.check(m, ""); err != nil {
		return nil, err
	}
	o, err := fromMeta(k, dec, typed)
	if err != nil {
		return nil, err
	}
	if dec.validate != nil {
		if err := dec.validate(typed); err != nil {
			return nil, err
		}
	}
	o.Kind, o.ApiVersion = kind, apiVersion
	spec := map[string]any{}
	for f, v := range m {
		switch f {
		case "apiVersion", "kind", "metadata", "status":
		default:
			if v != nil { // null is unset
				spec[f] = v
			}
		}
	}
	if len(spec) > 0 {
		o.Spec, _ = json.Marshal(spec) // cannot fail: spec came from JSON
	}
	return o, nil
}

func stringField(m map[string]any, name string) (string, *fieldErr) {
	v, ok := m[name]
	if !ok || v == nil || v == "" {
		return "", errAt(name, "required")
	}
	s, ok := v.(string)
	if !ok {
		return "", errAt(name, "must be a string, not "+article(jsonKind(v)))
	}
	return s, nil
}

// strictErr reports the first of sigs.k8s.io/json's strict errors (unknown
// or duplicate fields) at its path and lists the others in the message.
func strictErr(errs []error) *fieldErr {
	var first *fieldErr
	var more []string
	for _, e := range errs {
		path, msg := "", e.Error()
		var fe sjson.FieldError
		if errors.As(e, &fe) {
			path = fe.FieldPath()
			if i := strings.Index(msg, ` "`); i >= 0 {
				msg = msg[:i] // `unknown field "a.b"` -> `unknown field`
			}
		}
		if first == nil {
			first = errAt(path, msg)
			continue
		}
		more = append(more, path+": "+msg)
	}
	if len(more) > 0 {
		first.msg += "; also " + strings.Join(more, ", ")
	}
	return first
}

// typeErr turns a typed decode error into a field error. sigs.k8s.io/json
// returns its internal copy of encoding/json's UnmarshalTypeError, which
// cannot be named here, so its exported fields are read by reflection. Its
// Field path has no map keys or list indices; they are found again in doc.
func typeErr(err error, doc map[string]any) *fieldErr {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		s := v.Elem()
		value, typ, field := s.FieldByName("Value"), s.FieldByName("Type"), s.FieldByName("Field")
		if value.Kind() == reflect.String && field.Kind() == reflect.String && typ.IsValid() && typ.CanInterface() {
			if t, ok := typ.Interface().(reflect.Type); ok && t != nil {
				got := value.String() // "number", "number -5", "string"
				gotKind, _, _ := strings.Cut(got, " ")
				path := field.String()
				var segs []string
				if path != "" {
					segs = strings.Split(path, ".")
				}
				if p, ok := locate(doc, segs, "", gotKind); ok {
					path = p
				}
				msg := fmt.Sprintf("must be %s, not %s", describe(t), article(got))
				if gotKind == "bool" && t.Kind() == reflect.String {
					msg += " (YAML reads unquoted y, n, yes, no, on, off, true and false as booleans; quote the value)"
				}
				return errAt(path, msg)
			}
		}
	}
	return errAt("", err.Error())
}

// locate finds the first value of JSON kind want at a path whose list
// indices and trailing map key are missing, and which may name inlined Go
// structs.
func locate(v any, segs []string, path, want string) (string, bool) {
	if len(segs) == 0 && jsonKind(v) == want {
		return path, true
	}
	if l, ok := v.([]any); ok {
		for i, e := range l {
			if p, ok := locate(e, segs, join(path, "["+strconv.Itoa(i)+"]"), want); ok {
				return p, true
			}
		}
		return "", false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	if len(segs) == 0 {
		for _, k := range sortedKeys(m) {
			if jsonKind(m[k]) == want {
				return join(path, k), true
			}
		}
		return "", false
	}
	c, ok := m[segs[0]]
	if !ok {
		// The path names the Go field of an inlined struct
		// (Probe.ProbeHandler), which has no key of its own.
		return locate(v, segs[1:], path, want)
	}
	return locate(c, segs[1:], join(path, segs[0]), want)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case string:
		return "string"
	case int64, float64, json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// describe names a Go type in JSON terms.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

func article(s string) string {
	switch {
	case s == "null":
		return s
	case s == "array":
		return "a list"
	case strings.HasPrefix(s, "object") || strings.HasPrefix(s, "array"):
		return "an " + s
	}
	return "a " + s
}
