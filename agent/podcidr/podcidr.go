// Package podcidr gives every node a pod CIDR: a /24 (by default) out of
// the cluster CIDR, never the same one twice.
//
// The split is the one services use for ClusterIPs. The leader proposes
// (Allocate fills in spec.podCIDR of a Node that has none, from a start
// hashed from the node's name, skipping ranges its replica sees taken) and
// the state machine admits (Admit, run by every replica in log order,
// refuses a pod CIDR that overlaps another node's and one that changes), so
// two racing registrations end with one refused, never with an overlap.
//
// A node that registers with a pod CIDR of its own (--pod-cidr) keeps it if
// no other node holds an overlapping one. When the cluster CIDR is full a
// node registers without one; its agent cannot give pods addresses and says
// so.
package podcidr

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/shoal-dev/shoal/consensus/state"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Store index names: ByPodCIDR files nodes under spec.podCIDR as written,
// withPodCIDR files every node that has one under the single value "set"
// (for the overlap check against ranges of other sizes).
const (
	ByPodCIDR   = "nodes-by-podcidr"
	withPodCIDR = "nodes-with-podcidr"
)

// Defaults: the cluster CIDR is Kubernetes' customary pod range, cut into
// /24s (254 pods per node, 256 nodes).
var DefaultClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")

// DefaultNodeBits is the prefix length of each node's pod CIDR.
const DefaultNodeBits = 24

// ErrExhausted is a cluster CIDR with no free node range left.
var ErrExhausted = errors.New("no free pod CIDR left")

// peek is the part of a stored Node the index and Admit read.
type peek struct {
	Spec struct {
		PodCIDR string `json:"podCIDR"`
	} `json:"spec"`
}

// Of returns the node's spec.podCIDR as stored ("" when unset).
func Of(o *pb.Object) string {
	var p peek
	_ = json.Unmarshal(o.GetSpec(), &p)
	return p.Spec.PodCIDR
}

// Indexes are the store indexes Admit and Allocate read.
func Indexes() map[string]state.Index {
	return map[string]state.Index{
		ByPodCIDR:   {Kind: "Node", Value: Of, SpecOnly: true},
		withPodCIDR: {Kind: "Node", Value: hasPodCIDR, SpecOnly: true},
	}
}

func hasPodCIDR(o *pb.Object) string {
	if Of(o) == "" {
		return ""
	}
	return "set"
}

// Lookup reads the index of a replica (state.Store.Indexed).
type Lookup func(index, value string) []*pb.Object

// Admit is the state machine's check of a Node PUT (other kinds pass): a
// pod CIDR is a valid IPv4 range in canonical form, overlaps no other
// node's, and does not change once set.
func Admit(v state.View, cur, next *pb.Object) error {
	if next.GetKind() != "Node" {
		return nil
	}
	cidr := Of(next)
	if cur != nil {
		if was := Of(cur); was != "" && was != cidr {
			return fmt.Errorf("%w: spec.podCIDR: %q: immutable (was %q)", state.ErrInvalid, cidr, was)
		}
	}
	if cidr == "" {
		return nil
	}
	p, err := parse(cidr)
	if err != nil {
		return fmt.Errorf("%w: spec.podCIDR: %v", state.ErrInvalid, err)
	}
	if cur != nil && Of(cur) == cidr {
		return nil // unchanged: admitted when it was set
	}
	if other := overlapping(v.Indexed, p, next.GetName()); other != "" {
		return fmt.Errorf("%w: spec.podCIDR: %q: overlaps node %s's", state.ErrInvalid, cidr, other)
	}
	return nil
}

// Allocate returns o, a Node about to be written over cur (nil on create),
// with spec.podCIDR filled in: kept from cur when o leaves it out,
// otherwise the first free range of cluster (cut into /nodeBits) from a
// start hashed from the node's name. Other kinds, and nodes that have one,
// come back unchanged. It fails with ErrExhausted when no range is free;
// the caller may then write the node without one.
func Allocate(lookup Lookup, cluster netip.Prefix, nodeBits int, cur, o *pb.Object) (*pb.Object, error) {
	if o.GetKind() != "Node" || Of(o) != "" {
		return o, nil
	}
	var node corev1.Node
	if err := object.Decode(o, &node); err != nil {
		return nil, err
	}
	if was := Of(cur); cur != nil && was != "" {
		node.Spec.PodCIDR = was
	} else {
		p, err := free(lookup, cluster, nodeBits, o.GetName())
		if err != nil {
			return nil, err
		}
		node.Spec.PodCIDR = p.String()
	}
	node.Spec.PodCIDRs = []string{node.Spec.PodCIDR}
	out, err := object.FromTyped("Node", &node)
	if err != nil {
		return nil, err
	}
	// Keep the identity and preconditions the caller sent.
	out.ApiVersion, out.ResourceVersion, out.Uid = o.GetApiVersion(), o.GetResourceVersion(), o.GetUid()
	return out, nil
}

// free walks the node ranges of cluster from an offset hashed from name and
// returns the first one no node overlaps.
func free(lookup Lookup, cluster netip.Prefix, nodeBits int, name string) (netip.Prefix, error) {
	cluster = cluster.Masked()
	if !cluster.Addr().Is4() || nodeBits < cluster.Bits() || nodeBits > 30 {
		return netip.Prefix{}, fmt.Errorf("cluster CIDR %s cannot be cut into /%d node ranges", cluster, nodeBits)
	}
	n := uint64(1) << (nodeBits - cluster.Bits())
	start := hash(name) % n
	base := u32(cluster.Addr())
	size := uint32(1) << (32 - nodeBits)
	for i := range min(n, 1<<16) {
		off := uint32((start + i) % n)
		p := netip.PrefixFrom(addr(base+off*size), nodeBits)
		if len(lookup(ByPodCIDR, p.String())) > 0 {
			continue
		}
		if overlapping(lookup, p, name) == "" {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("spec.podCIDR: cluster CIDR %s: %w", cluster, ErrExhausted)
}

// overlapping names a node other than self whose pod CIDR overlaps p (""
// when none). The exact-match index answers the common case; a scan of
// the nodes that have a range catches ranges of other sizes given with
// --pod-cidr.
func overlapping(lookup Lookup, p netip.Prefix, self string) string {
	for _, o := range lookup(ByPodCIDR, p.String()) {
		if o.GetName() != self {
			return o.GetName()
		}
	}
	for _, o := range lookup(withPodCIDR, "set") {
		if o.GetName() == self {
			continue
		}
		if q, err := parse(Of(o)); err == nil && q.Overlaps(p) {
			return o.GetName()
		}
	}
	return ""
}

// parse accepts an IPv4 range in canonical form ("10.244.3.0/24").
func parse(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("%q: not a CIDR", s)
	case !p.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("%q: not an IPv4 range", s)
	case p.Masked() != p:
		return netip.Prefix{}, fmt.Errorf("%q: host bits set (did you mean %s?)", s, p.Masked())
	case p.Bits() > 30:
		return netip.Prefix{}, fmt.Errorf("%q: smaller than 4 addresses", s)
	}
	return p, nil
}

// Parse checks a pod CIDR as Admit does.
func Parse(s string) (netip.Prefix, error) { return parse(s) }

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}
