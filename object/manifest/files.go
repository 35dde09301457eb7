package manifest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

// manifestExts are the file name endings DecodeFiles reads in a directory.
var manifestExts = []string{".yaml", ".yml", ".json"}

// DecodeFiles decodes the manifests of `apply -f`: each path is a file, a
// directory (every *.yaml, *.yml and *.json file directly in it, in name
// order; subdirectories are not read), or "-" for stdin. The same object in
// two places is an error. No paths, or only empty inputs, give no objects
// and no error; the caller decides whether that is a mistake.
func DecodeFiles(paths []string, stdin io.Reader) ([]*shoalpb.Object, error) {
	var srcs []Source
	readStdin := false
	for _, p := range paths {
		if p == "-" {
			if readStdin {
				return nil, fmt.Errorf("read -: standard input given twice")
			}
			readStdin = true
			if stdin == nil {
				return nil, fmt.Errorf("read -: no standard input")
			}
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			srcs = append(srcs, Source{Name: "-", Data: data})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read manifests: %w", err)
		}
		if !st.IsDir() {
			src, err := readFile(p)
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, src)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return nil, fmt.Errorf("read manifests: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !hasManifestExt(e.Name()) {
				continue
			}
			src, err := readFile(filepath.Join(p, e.Name()))
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, src)
		}
	}
	return decodeAll(srcs)
}

// DecodeReader decodes the manifests read from r, naming them name in
// errors.
func DecodeReader(name string, r io.Reader) ([]*shoalpb.Object, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return Decode(Source{Name: name, Data: data})
}

func readFile(path string) (Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Source{}, fmt.Errorf("read manifests: %w", err)
	}
	return Source{Name: path, Data: data}, nil
}

func hasManifestExt(name string) bool {
	for _, ext := range manifestExts {
		if strings.HasSuffix(strings.ToLower(name), ext) {
			return true
		}
	}
	return false
}
