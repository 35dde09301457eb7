package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
)

// The reference is built from source at a pinned version, once: the binary
// is cached under the user's cache directory, so reruns skip the build.
const (
	corednsModule  = "github.com/coredns/coredns"
	corednsVersion = "v1.15.0"
)

// buildCoreDNS returns the cached CoreDNS binary, building it first with
// go install when it is not there (about 5 minutes on 2 cores with a cold
// module cache).
func buildCoreDNS(ctx context.Context, out io.Writer) (string, error) {
	cache, err := os.UserCacheDir() // $XDG_CACHE_HOME or ~/.cache
	if err != nil {
		return "", fmt.Errorf("coredns: no cache directory (set SHOAL_COREDNS_BIN): %w", err)
	}
	dir := filepath.Join(cache, "shoal-bench", "coredns-"+corednsVersion)
	bin := filepath.Join(dir, "coredns")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(out, "dnsbench: building CoreDNS from source: go install %s@%s (once; cached in %s)\n", corednsModule, corednsVersion, dir)
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "go", "install", corednsModule+"@"+corednsVersion)
	// Outside any module, with no GOFLAGS of the caller's (-mod=vendor
	// would refuse a module-aware install).
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", corednsModule, corednsVersion, err, proc.Last(b, 3000))
	}
	if err := os.Rename(filepath.Join(tmp, "coredns"), bin); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "dnsbench: built CoreDNS in %s\n", time.Since(start).Round(time.Second))
	return bin, nil
}
