package kubelet

import (
	"bufio"
	"bytes"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The limits the kubelet trims a pod's resolv.conf to, as Kubernetes does
// (the C resolver reads no more than these).
const (
	maxNameservers     = 3
	maxSearches        = 32
	maxSearchListChars = 2048
)

// resolvConf is the content of a resolv.conf: what a pod's is rendered from
// and what is read from the node's.
type resolvConf struct {
	Nameservers []string
	Searches    []string
	Options     []string // "name" or "name:value"
}

// parseResolvConf reads the nameserver, search and options lines of a
// resolv.conf, as Kubernetes does; anything else (comments, domain,
// sortlist) is dropped. A later search line replaces an earlier one, as in
// the C resolver.
func parseResolvConf(b []byte) resolvConf {
	var rc resolvConf
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) > 1 {
				rc.Nameservers = append(rc.Nameservers, fields[1])
			}
		case "search":
			rc.Searches = nil
			for _, s := range fields[1:] {
				if s != "." { // "." is the root: no search domain
					rc.Searches = append(rc.Searches, s)
				}
			}
		case "options":
			rc.Options = append(rc.Options, fields[1:]...)
		}
	}
	return rc
}

// render writes rc in the layout container runtimes use: search, then the
// nameservers, then options.
func (rc resolvConf) render() []byte {
	var b strings.Builder
	if len(rc.Searches) > 0 {
		b.WriteString("search " + strings.Join(rc.Searches, " ") + "\n")
	}
	for _, ns := range rc.Nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(rc.Options) > 0 {
		b.WriteString("options " + strings.Join(rc.Options, " ") + "\n")
	}
	return []byte(b.String())
}

// clusterSearches is the search path of a pod in namespace ns with
// ClusterFirst DNS.
func clusterSearches(ns, domain string) []string {
	return []string{ns + ".svc." + domain, "svc." + domain, domain}
}

// usesHostDNS reports whether the pod's resolv.conf starts from the node's,
// as in Kubernetes: dnsPolicy Default; ClusterFirst for a pod with
// hostNetwork; and ClusterFirst (or ClusterFirstWithHostNet) when the node
// has no cluster DNS. The process runtime shares the node's network with
// every pod, but only an explicit hostNetwork asks for the fallback.
func usesHostDNS(spec *corev1.PodSpec, clusterDNS bool) bool {
	switch spec.DNSPolicy {
	case corev1.DNSDefault:
		return true
	case corev1.DNSNone:
		return false
	case corev1.DNSClusterFirstWithHostNet:
		return !clusterDNS
	}
	return spec.HostNetwork || !clusterDNS // ClusterFirst, the default
}

// podResolvConf computes a pod's resolv.conf from its dnsPolicy and
// dnsConfig, the node's cluster DNS server (invalid when there is none), the
// cluster domain and the node's own resolv.conf. ClusterFirst gives
//
//	search <ns>.svc.<domain> svc.<domain> <domain>
//	nameserver <server>
//	options ndots:5
//
// dnsConfig is merged on top of every policy as Kubernetes does: its
// nameservers and searches are appended without duplicates, its options
// replace those of the same name. The lists are trimmed to the C resolver's
// limits.
func podResolvConf(pod *corev1.Pod, server netip.Addr, domain string, host resolvConf) resolvConf {
	var rc resolvConf
	switch {
	case pod.Spec.DNSPolicy == corev1.DNSNone:
	case usesHostDNS(&pod.Spec, server.IsValid()):
		rc = resolvConf{
			Nameservers: slices.Clone(host.Nameservers),
			Searches:    slices.Clone(host.Searches),
			Options:     slices.Clone(host.Options),
		}
	default:
		rc = resolvConf{
			Nameservers: []string{server.String()},
			Searches:    clusterSearches(pod.Namespace, domain),
			Options:     []string{"ndots:5"},
		}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		rc.Nameservers = appendNew(rc.Nameservers, dc.Nameservers...)
		rc.Searches = appendNew(rc.Searches, dc.Searches...)
		rc.Options = mergeOptions(rc.Options, dc.Options)
	}
	if len(rc.Nameservers) > maxNameservers {
		rc.Nameservers = rc.Nameservers[:maxNameservers]
	}
	rc.Searches = trimSearches(rc.Searches)
	return rc
}

// appendNew appends the values of add that list does not hold yet.
func appendNew(list []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// mergeOptions sets each option of add on list: an option of the same name
// is replaced in place, a new one is appended.
func mergeOptions(list []string, add []corev1.PodDNSConfigOption) []string {
	for _, o := range add {
		opt := o.Name
		if o.Value != nil && *o.Value != "" {
			opt += ":" + *o.Value
		}
		i := slices.IndexFunc(list, func(s string) bool {
			name, _, _ := strings.Cut(s, ":")
			return name == o.Name
		})
		if i >= 0 {
			list[i] = opt
		} else {
			list = append(list, opt)
		}
	}
	return list
}

// trimSearches keeps the leading searches that fit maxSearches and
// maxSearchListChars (the length of the list joined by spaces).
func trimSearches(s []string) []string {
	if len(s) > maxSearches {
		s = s[:maxSearches]
	}
	n := 0
	for i, d := range s {
		n += len(d)
		if i > 0 {
			n++
		}
		if n > maxSearchListChars {
			return s[:i]
		}
	}
	return s
}
