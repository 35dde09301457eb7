// Command mkimage writes an OCI image archive of a few host files, for
// `make testimage` (a containerd image of shoal-testapp without a registry):
//
//	go run ./internal/ociimage/mkimage -o OUT.tar -name REF [-entrypoint PATH] HOSTFILE[=IMAGEPATH]...
//
// Each HOSTFILE goes to IMAGEPATH (default /BASENAME); the entrypoint
// defaults to the first file. Import the result with
// `ctr -n NS image import OUT.tar` or the containerd driver's ImportImage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/internal/ociimage"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	out := fs.String("o", "", "archive to write (required)")
	name := fs.String("name", "", "image reference, fully qualified, e.g. localhost/shoal-testapp:latest (required)")
	entrypoint := fs.String("entrypoint", "", "entrypoint path inside the image (default: the first file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *name == "" || fs.NArg() == 0 {
		return errors.New("usage: mkimage -o OUT.tar -name REF [-entrypoint PATH] HOSTFILE[=IMAGEPATH] [HOSTFILE[=IMAGEPATH] ...]")
	}
	img := ociimage.Image{Name: *name}
	for _, arg := range fs.Args() {
		host, inImage, ok := strings.Cut(arg, "=")
		if !ok {
			inImage = "/" + filepath.Base(host)
		}
		f, err := ociimage.FromFile(host, inImage)
		if err != nil {
			return err
		}
		img.Files = append(img.Files, f)
	}
	img.Entrypoint = []string{img.Files[0].Path}
	if *entrypoint != "" {
		img.Entrypoint = []string{*entrypoint}
	}
	return ociimage.WriteFile(*out, img)
}
