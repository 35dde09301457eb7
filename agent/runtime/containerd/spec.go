package containerd

import (
	"context"
	"fmt"
	"path"
	"slices"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shoal-dev/shoal/agent/runtime"
)

// cfsPeriod is the CFS period CPU limits are expressed in (100 ms, the
// kernel's default and Kubernetes').
const cfsPeriod = 100_000

// specOpts builds the container's OCI spec on containerd's defaults: the
// image's config, then the container spec's argv, env and working dir, the
// pod's network namespace, hostname, /etc/resolv.conf and /etc/hosts, and
// the limits.
func (d *Driver) specOpts(ctx context.Context, img client.Image, pod runtime.Pod, c runtime.ContainerSpec, rec *podRecord) ([]oci.SpecOpts, error) {
	ic, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", img.Name(), err)
	}
	argv := containerArgv(c, ic.Config.Entrypoint, ic.Config.Cmd)
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command: the container has none and image %s has neither entrypoint nor cmd", img.Name())
	}
	cwd, err := workingDir(c.WorkingDir, ic.Config.WorkingDir)
	if err != nil {
		return nil, err
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(argv...),
		oci.WithEnv(c.Env), // replaces the image's variables of the same name
		oci.WithProcessCwd(cwd),
		oci.WithHostname(hostname(pod)),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: rec.NetNS}),
		oci.WithMounts([]specs.Mount{
			{Destination: "/etc/resolv.conf", Type: "bind", Source: d.files.ResolvConf(pod.UID), Options: []string{"rbind", "ro"}},
			{Destination: "/etc/hosts", Type: "bind", Source: d.hostsPath(pod.UID), Options: []string{"rbind", "ro"}},
		}),
	}
	if c.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(c.MemoryBytes)))
	}
	if c.CPUMillis > 0 {
		quota := max(c.CPUMillis*cfsPeriod/1000, 1000) // the kernel's minimum is 1 ms
		shares := max(uint64(c.CPUMillis)*1024/1000, 2)
		opts = append(opts, oci.WithCPUCFS(quota, cfsPeriod), oci.WithCPUShares(shares))
	}
	return opts, nil
}

// containerArgv applies Kubernetes' rules: command replaces the image's
// entrypoint and drops its cmd; args alone replace the cmd.
func containerArgv(c runtime.ContainerSpec, entrypoint, cmd []string) []string {
	switch {
	case len(c.Command) > 0:
		return append(slices.Clone(c.Command), c.Args...)
	case len(c.Args) > 0:
		return append(slices.Clone(entrypoint), c.Args...)
	}
	return append(slices.Clone(entrypoint), cmd...)
}

// workingDir is the spec's working dir, the image's, or /. A relative path
// is taken from / (OCI wants an absolute one).
func workingDir(spec, image string) (string, error) {
	switch {
	case spec == "" && image == "":
		return "/", nil
	case spec == "":
		spec = image
	}
	if !path.IsAbs(spec) {
		if !isLocal(spec) {
			return "", fmt.Errorf("workingDir %q: a relative path must stay below /", spec)
		}
		spec = "/" + spec
	}
	return path.Clean(spec), nil
}

// isLocal is filepath.IsLocal for slash paths.
func isLocal(p string) bool {
	p = path.Clean(p)
	return p != ".." && !path.IsAbs(p) && (len(p) < 3 || p[:3] != "../")
}
