package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func testImage() Image {
	return Image{
		Name:       "localhost/app:v1",
		Files:      []File{{Path: "/bin/app", Mode: 0o755, Data: []byte("#!binary")}, {Path: "/etc/app.conf", Mode: 0o644, Data: []byte("x=1\n")}},
		Entrypoint: []string{"/bin/app"},
		Cmd:        []string{"serve"},
		Env:        []string{"PATH=/bin"},
	}
}

// untar returns the regular files and directory names of a tar stream.
func untar(t *testing.T, r io.Reader) (map[string][]byte, map[string]int64) {
	t.Helper()
	files, modes := map[string][]byte{}, map[string]int64{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, modes
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.Mode
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
}

func TestWrite(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, testImage()); err != nil {
		t.Fatal(err)
	}
	files, _ := untar(t, bytes.NewReader(buf.Bytes()))
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", files["oci-layout"])
	}
	blob := func(d descriptor) []byte {
		t.Helper()
		b, ok := files[blobPath(d)]
		if !ok {
			t.Fatalf("no blob %s", d.Digest)
		}
		sum := sha256.Sum256(b)
		if "sha256:"+hex.EncodeToString(sum[:]) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s does not match its descriptor", d.Digest)
		}
		return b
	}
	var index imageIndex
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index = %+v", index)
	}
	md := index.Manifests[0]
	if md.Annotations[AnnotationImageName] != "localhost/app:v1" || md.Annotations[AnnotationRefName] != "v1" || md.Platform == nil {
		t.Fatalf("manifest descriptor = %+v", md)
	}
	var m imageManifest
	if err := json.Unmarshal(blob(md), &m); err != nil {
		t.Fatal(err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(blob(m.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/bin/app" || strings.Join(cfg.Config.Cmd, " ") != "serve" || cfg.OS != "linux" {
		t.Fatalf("config = %+v", cfg)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != MediaTypeLayer {
		t.Fatalf("layers = %+v", m.Layers)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(m.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if cfg.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatal("diff id is not the digest of the uncompressed layer")
	}
	layer, modes := untar(t, bytes.NewReader(raw))
	if string(layer["bin/app"]) != "#!binary" || modes["bin/app"] != 0o755 || string(layer["etc/app.conf"]) != "x=1\n" {
		t.Fatalf("layer files = %q, modes %v", layer, modes)
	}
	for _, dir := range []string{"bin/", "etc/", "tmp/", "proc/"} {
		if _, ok := modes[dir]; !ok {
			t.Errorf("layer has no %s", dir)
		}
	}
	if modes["tmp/"] != 0o1777 {
		t.Errorf("tmp mode = %o", modes["tmp/"])
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	img := testImage()
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	img.Files[0], img.Files[1] = img.Files[1], img.Files[0] // order does not matter
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of one image differ")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		img  Image
		want string
	}{
		{"no name", Image{}, "name"},
		{"relative", Image{Name: "a", Files: []File{{Path: "bin/x"}}}, "absolute"},
		{"root", Image{Name: "a", Files: []File{{Path: "/"}}}, "absolute"},
		{"twice", Image{Name: "a", Files: []File{{Path: "/x"}, {Path: "/x/"}}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Write(io.Discard, tt.img); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write = %v; want an error about %s", err, tt.want)
			}
		})
	}
}

func TestTagOf(t *testing.T) {
	for ref, want := range map[string]string{
		"localhost/a:v1":        "v1",
		"host:5000/a/b":         "",
		"host:5000/a/b:latest":  "latest",
		"a@sha256:abc":          "",
		"a:v2@sha256:abc":       "v2",
		"docker.io/library/x:3": "3",
	} {
		if got := tagOf(ref); got != want {
			t.Errorf("tagOf(%q) = %q, want %q", ref, got, want)
		}
	}
}
