// Package ociimage writes OCI image archives (the layout that `ctr image
// import` and containerd's client.Import read) from a few files, using only
// the standard library. It exists so that tests and `make testimage` can
// give containerd an image of a static binary without a registry.
//
// An archive is a tar of oci-layout, index.json (its one manifest annotated
// with io.containerd.image.name, so the import names the image) and
// blobs/sha256/: the manifest, the config and one gzipped layer. The output
// is deterministic: the same Image gives the same bytes.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"
)

// Media types and annotations of the OCI image spec and containerd.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	// AnnotationImageName is the name containerd gives the imported image.
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationRefName is the OCI layout's own tag annotation.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// Image is what Write packs into an archive.
type Image struct {
	// Name is the full reference, e.g. "localhost/shoal-testapp:latest".
	// Give it fully qualified: containerd looks images up by the exact name.
	Name string
	// Files make the one layer; parent directories are added.
	Files []File
	// Entrypoint, Cmd, Env ("K=V") and WorkingDir are the image config.
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	// OS and Architecture default to linux and the running GOARCH.
	OS           string
	Architecture string
}

// File is one regular file of the layer.
type File struct {
	// Path is absolute inside the image, e.g. "/shoal-testapp".
	Path string
	// Mode holds the permission bits (0755 for a binary).
	Mode fs.FileMode
	Data []byte
}

// FromFile reads a host file into a File placed at imagePath, keeping its
// permission bits.
func FromFile(hostPath, imagePath string) (File, error) {
	b, err := os.ReadFile(hostPath)
	if err != nil {
		return File{}, err
	}
	fi, err := os.Stat(hostPath)
	if err != nil {
		return File{}, err
	}
	return File{Path: imagePath, Mode: fi.Mode().Perm(), Data: b}, nil
}

// Validate reports the first problem with the image.
func (img Image) Validate() error {
	if img.Name == "" {
		return errors.New("image name: must not be empty")
	}
	seen := map[string]bool{}
	for _, f := range img.Files {
		p := path.Clean(f.Path)
		switch {
		case !path.IsAbs(f.Path) || p == "/":
			return fmt.Errorf("file %q: want an absolute path below /", f.Path)
		case seen[p]:
			return fmt.Errorf("file %q: given twice", f.Path)
		}
		seen[p] = true
	}
	return nil
}

// epoch stamps every entry, so that archives are reproducible.
var epoch = time.Unix(0, 0).UTC()

// Write writes img as an OCI image archive (a tar) to w.
func Write(w io.Writer, img Image) error {
	if err := img.Validate(); err != nil {
		return fmt.Errorf("oci image %s: %w", img.Name, err)
	}
	if img.OS == "" {
		img.OS = "linux"
	}
	if img.Architecture == "" {
		img.Architecture = goruntime.GOARCH
	}
	layer, diffID, err := buildLayer(img.Files)
	if err != nil {
		return fmt.Errorf("oci image %s: layer: %w", img.Name, err)
	}
	layerDesc := descriptorOf(MediaTypeLayer, layer)

	config, err := json.Marshal(imageConfig{
		Created:      epoch,
		Architecture: img.Architecture,
		OS:           img.OS,
		Config: execConfig{
			Entrypoint: img.Entrypoint, Cmd: img.Cmd, Env: img.Env, WorkingDir: img.WorkingDir,
		},
		RootFS: rootFS{Type: "layers", DiffIDs: []string{diffID}},
	})
	if err != nil {
		return err
	}
	configDesc := descriptorOf(MediaTypeConfig, config)

	manifest, err := json.Marshal(imageManifest{
		SchemaVersion: 2, MediaType: MediaTypeManifest, Config: configDesc, Layers: []descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := descriptorOf(MediaTypeManifest, manifest)
	manifestDesc.Platform = &platform{Architecture: img.Architecture, OS: img.OS}
	manifestDesc.Annotations = map[string]string{AnnotationImageName: img.Name}
	if tag := tagOf(img.Name); tag != "" {
		manifestDesc.Annotations[AnnotationRefName] = tag
	}
	index, err := json.Marshal(imageIndex{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []descriptor{manifestDesc}})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"blobs/", nil},
		{"blobs/sha256/", nil},
		{blobPath(layerDesc), layer},
		{blobPath(configDesc), config},
		{blobPath(manifestDesc), manifest},
		{"index.json", index},
	}
	for _, e := range entries {
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(e.name, "/") {
			mode = 0o755
		}
		if err := writeEntry(tw, e.name, mode, e.data); err != nil {
			return fmt.Errorf("oci image %s: %w", img.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("oci image %s: %w", img.Name, err)
	}
	return nil
}

// WriteFile writes img as an archive at path (through a temporary file, so a
// reader never sees half an archive).
func WriteFile(path string, img Image) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".ociimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename: ENOENT, ignored
	if err := Write(f, img); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// tagOf returns the tag of a reference ("latest" of "host:5000/a/b:latest"),
// or "" when it has none.
func tagOf(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	i := strings.LastIndexByte(name, ':')
	if i < 0 || strings.Contains(name[i:], "/") {
		return ""
	}
	return name[i+1:]
}

// buildLayer returns the gzipped layer tar and the digest of the
// uncompressed tar (the config's diff id).
func buildLayer(files []File) ([]byte, string, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(path.Clean(a.Path), path.Clean(b.Path)) })
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	dirs := map[string]bool{}
	addDir := func(d string) error {
		if dirs[d] {
			return nil
		}
		dirs[d] = true
		mode := fs.FileMode(0o755)
		if d == "tmp" {
			mode = 0o777 | fs.ModeSticky
		}
		return writeEntry(tw, d+"/", mode, nil)
	}
	// The usual mount points and /etc exist, so that runtimes need not
	// create them in the layer.
	for _, d := range []string{"dev", "etc", "proc", "sys", "tmp"} {
		if err := addDir(d); err != nil {
			return nil, "", err
		}
	}
	for _, f := range files {
		rel := strings.TrimPrefix(path.Clean(f.Path), "/")
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			if err := addDir(strings.Join(parts[:i], "/")); err != nil {
				return nil, "", err
			}
		}
		if err := writeEntry(tw, rel, f.Mode.Perm(), f.Data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// writeEntry writes a directory (name ending in "/") or a regular file.
func writeEntry(tw *tar.Writer, name string, mode fs.FileMode, data []byte) error {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(mode.Perm()),
		ModTime: epoch,
		Format:  tar.FormatPAX,
	}
	if mode&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	if strings.HasSuffix(name, "/") {
		hdr.Typeflag = tar.TypeDir
	} else {
		hdr.Typeflag = tar.TypeReg
		hdr.Size = int64(len(data))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	return nil
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

func descriptorOf(mediaType string, b []byte) descriptor {
	sum := sha256.Sum256(b)
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
}

func blobPath(d descriptor) string {
	return "blobs/sha256/" + strings.TrimPrefix(d.Digest, "sha256:")
}

type imageIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type imageManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type imageConfig struct {
	Created      time.Time  `json:"created"`
	Architecture string     `json:"architecture"`
	OS           string     `json:"os"`
	Config       execConfig `json:"config"`
	RootFS       rootFS     `json:"rootfs"`
}

type execConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}
