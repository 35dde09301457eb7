package containerd

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestPodCIDRLater: a driver started without a pod CIDR refuses pod
// networks until it gets one, keeps it across a restart, and refuses to
// change it while it runs.
func TestPodCIDRLater(t *testing.T) {
	cfg := testConfig(t)
	cidr := cfg.PodCIDR
	cfg.PodCIDR = ""
	d := openDriver(t, cfg)
	if got := d.PodCIDR(); got != "" {
		t.Fatalf("PodCIDR before it is set = %q", got)
	}
	if _, err := d.SetupPodNetwork(t.Context(), testPod); !errors.Is(err, errNoPodCIDR) {
		t.Fatalf("pod network without a pod CIDR: %v, want errNoPodCIDR", err)
	}
	if err := d.SetPodCIDR("10.244.1.1/24"); err == nil || !strings.Contains(err.Error(), "host bits") {
		t.Fatalf("SetPodCIDR of a bad range: %v", err)
	}
	if err := d.SetPodCIDR(cidr); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPodCIDR(cidr); err != nil {
		t.Fatalf("setting the same range again: %v", err)
	}
	if err := d.SetPodCIDR("10.251.0.0/24"); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("changing the range: %v, want refused", err)
	}
	ip, err := d.SetupPodNetwork(t.Context(), testPod)
	if err != nil {
		t.Fatal(err)
	}
	if !netip.MustParsePrefix(cidr).Contains(ip) {
		t.Fatalf("pod ip %s not in %s", ip, cidr)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// A new driver on the same dir, still without a configured range,
	// takes the saved one and re-adopts the pod's network.
	d2 := openDriver(t, cfg)
	if got := d2.PodCIDR(); got != cidr {
		t.Fatalf("PodCIDR after a restart = %q, want %q", got, cidr)
	}
	if again, err := d2.SetupPodNetwork(t.Context(), testPod); err != nil || again != ip {
		t.Fatalf("pod network after a restart = %s, %v; want %s", again, err, ip)
	}
	if err := d2.RemovePod(t.Context(), testPod.UID, 0); err != nil {
		t.Fatal(err)
	}
}
