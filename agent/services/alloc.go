// Package services allocates Service addresses: ClusterIPs from the
// service CIDR and node ports from 30000-32767, never twice.
//
// The split is the same as for binds. The leader proposes (Allocate picks
// free values in its replica, starting from a hash of the service's name so
// that concurrent proposals rarely pick the same one) and the state machine
// admits (Admit, run by every replica in log order, refuses a ClusterIP or
// node port another service holds, and a ClusterIP that changes), so a race
// between two proposals ends with one refused, never with a duplicate.
package services

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
	"github.com/shoal-dev/shoal/object/manifest"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Store index names.
const (
	ByClusterIP = "services-by-clusterip"
	ByNodePort  = "services-by-nodeport" // values "TCP/30080"
)

// DefaultCIDR is the default service CIDR, as Kubernetes'.
var DefaultCIDR = netip.MustParsePrefix("10.96.0.0/12")

// ErrExhausted is an allocation with no free value left. Allocate's other
// errors are requests that cannot be met.
var ErrExhausted = errors.New("no free address left")

// peek is the part of a stored Service the indexes read.
type peek struct {
	Spec struct {
		Type      corev1.ServiceType `json:"type"`
		ClusterIP string             `json:"clusterIP"`
		Ports     []struct {
			Protocol corev1.Protocol `json:"protocol"`
			NodePort int32           `json:"nodePort"`
		} `json:"ports"`
	} `json:"spec"`
}

func peekOf(o *pb.Object) peek {
	var p peek
	_ = json.Unmarshal(o.GetSpec(), &p)
	return p
}

func clusterIPOf(o *pb.Object) string {
	ip := peekOf(o).Spec.ClusterIP
	if ip == corev1.ClusterIPNone {
		return ""
	}
	return ip
}

func nodePortsOf(o *pb.Object) []string {
	var out []string
	for _, p := range peekOf(o).Spec.Ports {
		if p.NodePort != 0 {
			out = append(out, portKey(p.Protocol, p.NodePort))
		}
	}
	return out
}

func portKey(proto corev1.Protocol, port int32) string {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return string(proto) + "/" + strconv.Itoa(int(port))
}

// Indexes are the store indexes Admit and Allocate read.
func Indexes() map[string]state.Index {
	return map[string]state.Index{
		ByClusterIP: {Kind: "Service", Value: clusterIPOf, SpecOnly: true},
		ByNodePort:  {Kind: "Service", Values: nodePortsOf, SpecOnly: true},
	}
}

// Admit is the state machine's check of a Service PUT (other kinds pass):
// its ClusterIP and node ports are held by no other service, and a
// ClusterIP once given does not change.
func Admit(v state.View, cur, next *pb.Object) error {
	if next.GetKind() != "Service" {
		return nil
	}
	self := state.KeyOf(next)
	ip := clusterIPOf(next)
	if cur != nil {
		if was := peekOf(cur).Spec.ClusterIP; was != "" && was != peekOf(next).Spec.ClusterIP {
			return fmt.Errorf("%w: spec.clusterIP: %q: immutable (was %q)", state.ErrInvalid, peekOf(next).Spec.ClusterIP, was)
		}
	}
	if ip != "" {
		for _, o := range v.Indexed(ByClusterIP, ip) {
			if state.KeyOf(o) != self {
				return fmt.Errorf("%w: spec.clusterIP: %q: already allocated to service %s/%s", state.ErrInvalid, ip, o.GetNamespace(), o.GetName())
			}
		}
	}
	for _, np := range nodePortsOf(next) {
		for _, o := range v.Indexed(ByNodePort, np) {
			if state.KeyOf(o) != self {
				return fmt.Errorf("%w: spec.ports: node port %s: already allocated to service %s/%s", state.ErrInvalid, np, o.GetNamespace(), o.GetName())
			}
		}
	}
	return nil
}

// Lookup reads the index of a replica (state.Store.Indexed).
type Lookup func(index, value string) []*pb.Object

// Allocate returns o, a Service about to be written over cur (nil on
// create), with its ClusterIP and node ports filled in: kept from cur when
// the manifest leaves them out, otherwise the first free ones in lookup's
// replica from a start derived from the service's name. Other kinds and
// services that need nothing come back unchanged.
func Allocate(lookup Lookup, cidr netip.Prefix, cur, o *pb.Object) (*pb.Object, error) {
	if o.GetKind() != "Service" {
		return o, nil
	}
	var svc corev1.Service
	if err := object.Decode(o, &svc); err != nil {
		return nil, err
	}
	var old corev1.Service
	if cur != nil {
		if err := object.Decode(cur, &old); err != nil {
			return nil, err
		}
	}
	changed := false
	spec := &svc.Spec
	if ip, err := netip.ParseAddr(spec.ClusterIP); err == nil && (old.Spec.ClusterIP != spec.ClusterIP) && !cidr.Contains(ip) {
		return nil, fmt.Errorf("spec.clusterIP: %q: not in the service CIDR %s", spec.ClusterIP, cidr)
	}
	if spec.ClusterIP == "" && spec.Type != corev1.ServiceTypeExternalName {
		if old.Spec.ClusterIP != "" {
			spec.ClusterIP = old.Spec.ClusterIP
		} else {
			ip, err := freeIP(lookup, cidr, state.KeyOf(o))
			if err != nil {
				return nil, err
			}
			spec.ClusterIP = ip.String()
		}
		spec.ClusterIPs = []string{spec.ClusterIP}
		changed = true
	}
	if spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer {
		taken := map[string]bool{}
		for _, p := range spec.Ports {
			if p.NodePort != 0 {
				taken[portKey(p.Protocol, p.NodePort)] = true
			}
		}
		for i := range spec.Ports {
			p := &spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			if kept := keptNodePort(old.Spec.Ports, p); kept != 0 {
				p.NodePort = kept
			} else {
				np, err := freeNodePort(lookup, p.Protocol, state.KeyOf(o)+"/"+p.Name, taken)
				if err != nil {
					return nil, err
				}
				p.NodePort = np
			}
			taken[portKey(p.Protocol, p.NodePort)] = true
			changed = true
		}
	}
	if !changed {
		return o, nil
	}
	out, err := object.FromTyped("Service", &svc)
	if err != nil {
		return nil, err
	}
	// Keep the identity and preconditions the caller sent.
	out.ResourceVersion, out.Uid = o.GetResourceVersion(), o.GetUid()
	return out, nil
}

// keptNodePort is the node port the stored service gave the same port.
func keptNodePort(old []corev1.ServicePort, p *corev1.ServicePort) int32 {
	for _, q := range old {
		if q.NodePort != 0 && q.Port == p.Port && q.Protocol == p.Protocol && q.Name == p.Name {
			return q.NodePort
		}
	}
	return 0
}

// freeIP walks the CIDR from an offset hashed from key, skipping the
// network address and the first host (kept for the cluster's own use, as
// Kubernetes keeps .1 for its API service) and the broadcast address.
func freeIP(lookup Lookup, cidr netip.Prefix, key string) (netip.Addr, error) {
	cidr = cidr.Masked()
	bits := cidr.Addr().BitLen() - cidr.Bits()
	if bits < 3 {
		return netip.Addr{}, fmt.Errorf("service CIDR %s is too small", cidr)
	}
	size := new(big.Int).Lsh(big.NewInt(1), uint(min(bits, 62)))
	usable := new(big.Int).Sub(size, big.NewInt(3)) // network, .1, broadcast
	n := usable.Int64()
	start := int64(hash(key) % uint64(n))
	base := new(big.Int).SetBytes(cidr.Addr().AsSlice())
	for i := range min(n, 1<<20) {
		off := (start+i)%n + 2
		ipInt := new(big.Int).Add(base, big.NewInt(off))
		b := ipInt.FillBytes(make([]byte, len(cidr.Addr().AsSlice())))
		ip, _ := netip.AddrFromSlice(b)
		if len(lookup(ByClusterIP, ip.String())) == 0 {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("spec.clusterIP: service CIDR %s: %w", cidr, ErrExhausted)
}

func freeNodePort(lookup Lookup, proto corev1.Protocol, key string, taken map[string]bool) (int32, error) {
	n := int64(manifest.NodePortMax - manifest.NodePortMin + 1)
	start := int64(hash(key) % uint64(n))
	for i := range n {
		port := int32(manifest.NodePortMin + (start+i)%n)
		k := portKey(proto, port)
		if !taken[k] && len(lookup(ByNodePort, k)) == 0 {
			return port, nil
		}
	}
	return 0, fmt.Errorf("spec.ports: node ports %d-%d: %w", manifest.NodePortMin, manifest.NodePortMax, ErrExhausted)
}

func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strings.ToLower(s)))
	return h.Sum64()
}
