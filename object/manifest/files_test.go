package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/object"
)

func TestDecodeFiles(t *testing.T) {
	stdinYAML := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-stdin\n"
	tests := []struct {
		name  string
		paths []string
		stdin string
		want  []string // object keys in order
	}{
		{
			name:  "directory: manifest files in name order, no subdirectories",
			paths: []string{"testdata/dir"},
			want:  []string{"Namespace//dir-ns", "ConfigMap/dir-ns/b", "ConfigMap/dir-ns/c"},
		},
		{
			name:  "file, then stdin",
			paths: []string{"testdata/dir/a.yaml", "-"},
			stdin: stdinYAML,
			want:  []string{"Namespace//dir-ns", "ConfigMap/default/from-stdin"},
		},
		{
			name:  "nothing",
			paths: nil,
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := DecodeFiles(tt.paths, strings.NewReader(tt.stdin))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, object.KeyOf(o))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeFilesErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := write("one.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns1\n")
	two := write("two.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns1\n")
	bad := write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  generateName: x\n")

	tests := []struct {
		name    string
		paths   []string
		stdin   string
		wantErr string
		file    string // when the error is an *Error
		doc     int
	}{
		{
			name: "same object in two files", paths: []string{one, two},
			wantErr: `metadata.name: Namespace "ns1" is also defined in ` + one + " document 1",
			file:    two, doc: 2,
		},
		{name: "bad document names its file", paths: []string{one, bad}, wantErr: "metadata.generateName: not supported", file: bad, doc: 1},
		{name: "bad stdin is named -", paths: []string{"-"}, stdin: "kind: ConfigMap\n", wantErr: "-: document 1: apiVersion: required", file: "-", doc: 1},
		{name: "missing file", paths: []string{filepath.Join(dir, "nope.yaml")}, wantErr: "read manifests: stat "},
		{name: "stdin twice", paths: []string{"-", "-"}, wantErr: "standard input given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeFiles(tt.paths, strings.NewReader(tt.stdin))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			var e *Error
			if tt.file != "" && (!errors.As(err, &e) || e.File != tt.file || e.Doc != tt.doc) {
				t.Fatalf("error = %#v, want File %q Doc %d", err, tt.file, tt.doc)
			}
		})
	}
}

func TestDecodeReader(t *testing.T) {
	objs, err := DecodeReader("in", strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: r\n"))
	if err != nil || len(objs) != 1 || objs[0].Name != "r" {
		t.Fatalf("DecodeReader = %v, %v", objs, err)
	}
	_, err = DecodeReader("in", strings.NewReader("kind: Namespace\n"))
	var e *Error
	if !errors.As(err, &e) || e.File != "in" {
		t.Fatalf("DecodeReader error = %v, want an *Error for file in", err)
	}
}
