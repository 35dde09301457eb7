package main

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseMasqRules(t *testing.T) {
	const listing = `Chain POSTROUTING (policy ACCEPT)
num  target     prot opt source               destination
1    CNI-6a1b2c3d4e5f60718293a4b5  all  --  10.244.201.3         0.0.0.0/0            /* name: "shoal" id: "aa" */
2    CNI-0f1e2d3c4b5a69788796a5b4  all  --  10.244.77.3          0.0.0.0/0            /* name: "shoal" id: "bb" */
3    MASQUERADE  all  --  10.244.201.0/24      0.0.0.0/0
4    CNI-aabbccddeeff001122334455  all  --  10.244.201.250       0.0.0.0/0            /* name: "shoal" id: "cc" */
5    CNI-ffeeddccbbaa998877665544  all  --  10.244.0.0/16        0.0.0.0/0
6    RETURN     all  --  10.244.201.0/24      10.244.0.0/16        /* shoal: pod to pod without NAT */
7    RETURN     all  --  10.244.77.0/24       10.244.0.0/16        /* shoal: pod to pod without NAT */
8    RETURN     all  --  10.244.201.0/24      10.244.0.0/16        /* someone else's */
`
	tests := []struct {
		name    string
		listing string
		want    []masqRule
	}{
		{"own pods and the agent's rule only", listing, []masqRule{{1, "CNI-6a1b2c3d4e5f60718293a4b5"}, {4, "CNI-aabbccddeeff001122334455"}, {6, ""}}},
		{"empty chain", "Chain POSTROUTING (policy ACCEPT)\nnum  target     prot opt source               destination\n", nil},
		{"garbage", "x y z\n\n1 CNI-x all -- not-an-ip 0.0.0.0/0\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseMasqRules(tt.listing, netip.MustParsePrefix(podCIDR))
			if !slices.Equal(got, tt.want) {
				t.Errorf("parseMasqRules = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSocketFlag(t *testing.T) {
	tests := []struct {
		name, help, want string
	}{
		{"renamed", "      --containerd-socket string   containerd's socket", "--containerd-socket"},
		{"before the rename", "      --containerd-address string   containerd's socket", "--containerd-address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := socketFlag(tt.help); got != tt.want {
				t.Errorf("socketFlag = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInParallel(t *testing.T) {
	// Every start holds its slot until the test releases it, so the test
	// sees how many are in flight at once.
	var inFlight, most atomic.Int32
	gate := make(chan struct{})
	type result struct {
		p   parallelRun
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := inParallel(t.Context(), 12, 3, func(ctx context.Context, i int) (time.Duration, error) {
			n := inFlight.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			select {
			case <-gate:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			inFlight.Add(-1)
			return time.Duration(i+1) * time.Millisecond, nil
		})
		done <- result{p, err}
	}()
	for released := 0; released < 12; released++ {
		// Wait until the pool is full (or all that are left have entered).
		want := int32(min(3, 12-released))
		deadline := time.Now().Add(10 * time.Second)
		for inFlight.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("after %d released: %d in flight, want %d", released, inFlight.Load(), want)
			}
			runtime.Gosched()
		}
		gate <- struct{}{}
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	p := r.p
	if len(p.lat) != 12 || p.lat[0] != time.Millisecond || p.lat[11] != 12*time.Millisecond {
		t.Errorf("latencies %v: want one per start, by index", p.lat)
	}
	if most.Load() != 3 {
		t.Errorf("%d starts in flight at most, want 3", most.Load())
	}
	if p.wall <= 0 || p.rate() <= 0 {
		t.Errorf("wall %s rate %.1f: want both positive", p.wall, p.rate())
	}

	boom := errors.New("boom")
	_, err := inParallel(t.Context(), 10, 2, func(ctx context.Context, i int) (time.Duration, error) {
		if i == 3 {
			return 0, boom
		}
		return time.Millisecond, nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the failing start's", err)
	}
}
