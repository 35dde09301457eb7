package podroutes

import (
	"fmt"
	"net/netip"

	"github.com/coreos/go-iptables/iptables"
)

// masqComment marks the rule NoMasquerade inserts.
const masqComment = "shoal: pod to pod without NAT"

// NoMasquerade makes traffic from this node's pods to the cluster's pods
// leave with the pod's own address: the CNI bridge plugin masquerades
// everything its pods send beyond the node's range, and this rule, first
// in nat POSTROUTING, returns before those for destinations in cluster.
// Pods then see each other's real addresses, as Kubernetes networking
// requires; traffic to anything else is still masqueraded. It is
// idempotent and reports whether it inserted the rule. Without iptables
// (and so without masquerading) it does nothing.
func NoMasquerade(pods, cluster netip.Prefix) (bool, error) {
	ipt, err := iptables.New()
	if err != nil {
		return false, nil // no iptables: the bridge plugin masquerades nothing
	}
	rule := masqRule(pods, cluster)
	ok, err := ipt.Exists("nat", "POSTROUTING", rule...)
	if err != nil {
		return false, fmt.Errorf("iptables: %w", err)
	}
	if ok {
		return false, nil
	}
	if err := ipt.Insert("nat", "POSTROUTING", 1, rule...); err != nil {
		return false, fmt.Errorf("iptables: insert pod to pod rule: %w", err)
	}
	return true, nil
}

// RemoveNoMasquerade removes the rule NoMasquerade inserted, if it is there.
// Agents leave it in place when they stop (their pods run on); this is for
// tests and for taking a node out of the cluster for good.
func RemoveNoMasquerade(pods, cluster netip.Prefix) error {
	ipt, err := iptables.New()
	if err != nil {
		return nil
	}
	if err := ipt.DeleteIfExists("nat", "POSTROUTING", masqRule(pods, cluster)...); err != nil {
		return fmt.Errorf("iptables: delete pod to pod rule: %w", err)
	}
	return nil
}

func masqRule(pods, cluster netip.Prefix) []string {
	return []string{"-s", pods.Masked().String(), "-d", cluster.Masked().String(),
		"-m", "comment", "--comment", masqComment, "-j", "RETURN"}
}
