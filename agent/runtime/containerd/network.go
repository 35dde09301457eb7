package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	cnitypes100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/internal/atomicfile"
	"github.com/shoal-dev/shoal/agent/runtime/internal/layout"
)

// cniVersion of the configurations the driver writes; Debian's plugins
// (1.1.1) speak it.
const cniVersion = "1.0.0"

// podIfName is the pod's interface; the loopback plugin gets "lo".
const podIfName = "eth0"

// network attaches pods' namespaces with CNI: the loopback plugin brings up
// lo, the bridge plugin adds a veth to Config.Bridge with an address from
// host-local IPAM over the node's pod CIDR. The configurations are built
// from Config (nothing is read from /etc/cni) and CNI's cache and the IPAM
// state live under Dir/cni, so agents sharing a host do not mix.
type network struct {
	cidr   string
	cni    *libcni.CNIConfig
	bridge *libcni.NetworkConfigList
	lo     *libcni.NetworkConfigList
}

// errNoPodCIDR: pods cannot get a network before the node has a range.
var errNoPodCIDR = errors.New("this node has no pod CIDR yet (the cluster allocates one when the agent registers; --pod-cidr sets one)")

// podCIDRFile keeps the range under Dir/cni, so a restarted driver can
// release and re-adopt pod networks before the agent hears from the
// cluster again.
const podCIDRFile = "podcidr"

// initNetwork sets up the network from Config.PodCIDR, or else from the
// range an earlier run saved.
func (d *Driver) initNetwork() error {
	cidr := d.cfg.PodCIDR
	b, err := os.ReadFile(filepath.Join(d.cfg.Dir, "cni", podCIDRFile))
	switch {
	case err == nil:
		saved := strings.TrimSpace(string(b))
		if cidr == "" {
			cidr = saved
		} else if saved != cidr {
			d.log.Warn("pod CIDR differs from the one pods were given before", "was", saved, "now", cidr)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if cidr == "" {
		return nil
	}
	return d.SetPodCIDR(cidr)
}

// SetPodCIDR gives the node its pod range; pods can get networks from
// then on. Setting the range in use again is a no-op; a different one is
// refused while the driver runs (restart the agent to change it).
func (d *Driver) SetPodCIDR(cidr string) error {
	if err := validPodCIDR(cidr); err != nil {
		return err
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if d.net != nil {
		if d.net.cidr == cidr {
			return nil
		}
		return fmt.Errorf("pod cidr %s: this driver already gives pods addresses from %s (restart to change it)", cidr, d.net.cidr)
	}
	n, err := newNetwork(d.cfg, cidr)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(d.cfg.Dir, "cni", podCIDRFile), []byte(cidr+"\n"), 0o644); err != nil {
		return err
	}
	d.net = n
	d.log.Info("pod CIDR set", "cidr", cidr, "bridge", d.cfg.Bridge)
	return nil
}

// PodCIDR returns the node's pod range ("" before it has one).
func (d *Driver) PodCIDR() string {
	d.netMu.RLock()
	defer d.netMu.RUnlock()
	if d.net == nil {
		return ""
	}
	return d.net.cidr
}

// network returns the pod network, or errNoPodCIDR.
func (d *Driver) network() (*network, error) {
	d.netMu.RLock()
	defer d.netMu.RUnlock()
	if d.net == nil {
		return nil, errNoPodCIDR
	}
	return d.net, nil
}

// delNetwork releases a pod's network; without a pod CIDR nothing was
// ever attached.
func (d *Driver) delNetwork(ctx context.Context, rec *podRecord) error {
	n, err := d.network()
	if err != nil {
		return nil
	}
	return n.del(ctx, rec)
}

func newNetwork(cfg Config, cidr string) (*network, error) {
	dir := filepath.Join(cfg.Dir, "cni")
	bridge := map[string]any{
		"cniVersion": cniVersion,
		"name":       cfg.Network,
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      cfg.Bridge,
			"isGateway":   true,
			"ipMasq":      cfg.ipMasq(),
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": cidr}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": filepath.Join(dir, "ipam"),
			},
		}},
	}
	lo := map[string]any{
		"cniVersion": cniVersion,
		"name":       cfg.Network + "-lo",
		"plugins":    []any{map[string]any{"type": "loopback"}},
	}
	n := &network{cidr: cidr, cni: libcni.NewCNIConfigWithCacheDir(cfg.CNIBinDirs, filepath.Join(dir, "cache"), nil)}
	var err error
	if n.bridge, err = confList(dir, bridge); err != nil {
		return nil, err
	}
	if n.lo, err = confList(dir, lo); err != nil {
		return nil, err
	}
	return n, nil
}

// confList parses conf and writes it to dir/<name>.conflist, for operators
// who want to run the plugins by hand.
func confList(dir string, conf map[string]any) (*libcni.NetworkConfigList, error) {
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("cni config %s: %w", conf["name"], err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, list.Name+".conflist"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return list, nil
}

func (n *network) runtimeConf(rec *podRecord, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: rec.CNIID,
		NetNS:       rec.NetNS,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", rec.Pod.Namespace},
			{"K8S_POD_NAME", rec.Pod.Name},
			{"K8S_POD_UID", rec.Pod.UID},
		},
	}
}

// add attaches the pod's namespace and returns its IPv4 address.
func (n *network) add(ctx context.Context, rec *podRecord) (netip.Addr, error) {
	if _, err := n.cni.AddNetworkList(ctx, n.lo, n.runtimeConf(rec, "lo")); err != nil {
		return netip.Addr{}, fmt.Errorf("cni add %s: %w", n.lo.Name, err)
	}
	res, err := n.cni.AddNetworkList(ctx, n.bridge, n.runtimeConf(rec, podIfName))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cni add %s: %w", n.bridge.Name, err)
	}
	cur, err := cnitypes100.NewResultFromResult(res)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cni add %s: result: %w", n.bridge.Name, err)
	}
	for _, ip := range cur.IPs {
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok && a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("cni add %s: no IPv4 address in the result", n.bridge.Name)
}

// del detaches the pod's namespace and releases its address. It works on a
// namespace that is already gone (the plugins then only release the
// address and rules).
func (n *network) del(ctx context.Context, rec *podRecord) error {
	var errs []error
	if err := n.cni.DelNetworkList(ctx, n.bridge, n.runtimeConf(rec, podIfName)); err != nil {
		errs = append(errs, fmt.Errorf("cni del %s: %w", n.bridge.Name, err))
	}
	if err := n.cni.DelNetworkList(ctx, n.lo, n.runtimeConf(rec, "lo")); err != nil {
		errs = append(errs, fmt.Errorf("cni del %s: %w", n.lo.Name, err))
	}
	return errors.Join(errs...)
}

// podNet is one pod's network as the driver knows it. mu is held for
// writing while the network is set up or torn down and for reading while a
// container of the pod is created, so no container joins a namespace that
// is going away.
type podNet struct {
	mu  sync.RWMutex
	rec *podRecord // nil: no network; guarded by mu
}

// SetupPodNetwork creates the pod's network namespace and attaches it with
// CNI, unless that is done; it returns the pod's IP.
func (d *Driver) SetupPodNetwork(ctx context.Context, pod runtime.Pod) (netip.Addr, error) {
	if !layout.ValidName(pod.UID) {
		return netip.Addr{}, fmt.Errorf("pod %q: uid %q is not a valid name", pod.Name, pod.UID)
	}
	pn, err := d.podNet(pod.UID)
	if err != nil {
		return netip.Addr{}, err
	}
	ip, _, err := d.ensureNetwork(ctx, pod, pn)
	return ip, err
}

// ensureNetwork sets up the pod's network unless it exists; made tells
// whether this call did it.
func (d *Driver) ensureNetwork(ctx context.Context, pod runtime.Pod, pn *podNet) (ip netip.Addr, made bool, err error) {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	if pn.rec != nil {
		return pn.rec.IP, false, nil
	}
	rec, err := d.setupNetwork(ctx, pod)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("set up network of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	pn.rec = rec
	d.log.Info("pod network set up", "pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID, "ip", rec.IP)
	return rec.IP, true, nil
}

// podNet returns the pod's entry, creating it.
func (d *Driver) podNet(uid string) (*podNet, error) {
	if err := d.life.Closed(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	pn := d.pods[uid]
	if pn == nil {
		pn = &podNet{}
		d.pods[uid] = pn
	}
	return pn, nil
}

// setupNetwork makes the namespace, attaches it and writes pod.json and
// the pod's /etc/hosts. On error nothing is left.
func (d *Driver) setupNetwork(ctx context.Context, pod runtime.Pod) (rec *podRecord, err error) {
	dir := d.files.Pod(pod.UID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n, err := d.network()
	if err != nil {
		return nil, err
	}
	rec = &podRecord{Pod: pod, NetNS: d.netnsPath(pod.UID), CNIID: cniContainerID(pod.UID)}
	// A namespace file left by a crash between its creation and pod.json.
	if err := removeNetNS(rec.NetNS); err != nil {
		return nil, err
	}
	if err := newNetNS(rec.NetNS); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = n.del(context.WithoutCancel(ctx), rec)
			_ = removeNetNS(rec.NetNS)
			_ = os.Remove(d.podRecordPath(pod.UID))
		}
	}()
	if rec.IP, err = n.add(ctx, rec); err != nil {
		return nil, err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", rec.IP, hostname(pod))
	if err := atomicfile.Write(d.hostsPath(pod.UID), []byte(hosts), 0o644); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(d.podRecordPath(pod.UID), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return rec, nil
}

// teardownNetwork detaches and removes the pod's namespace (called with
// pn.mu held for writing).
func (d *Driver) teardownNetwork(ctx context.Context, pn *podNet) error {
	if pn.rec == nil {
		return nil
	}
	var errs []error
	if err := d.delNetwork(ctx, pn.rec); err != nil {
		errs = append(errs, err)
	}
	if err := removeNetNS(pn.rec.NetNS); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(d.podRecordPath(pn.rec.Pod.UID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	pn.rec = nil
	return nil
}

// hostname is the pod's name cut to the 63 bytes a hostname may have.
func hostname(pod runtime.Pod) string {
	h := pod.Name
	if len(h) > 63 {
		h = h[:63]
	}
	if h == "" {
		h = "pod"
	}
	return h
}
