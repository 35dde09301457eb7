package stats

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		xs   []int
		p    float64
		want int
	}{
		{"empty", nil, 50, 0},
		{"one", []int{7}, 99, 7},
		{"median of odd", []int{3, 1, 2}, 50, 2},
		{"median of even is the lower middle", []int{4, 1, 3, 2}, 50, 2},
		{"p99 of 100 is the 99th", seq(100), 99, 99},
		{"p100 is the max", seq(10), 100, 10},
		{"tiny p is the min", seq(10), 0.1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.xs, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
			}
		})
	}
}

func TestPercentileLeavesInputAlone(t *testing.T) {
	xs := []time.Duration{3, 1, 2}
	_ = Median(xs)
	if xs[0] != 3 || xs[1] != 1 || xs[2] != 2 {
		t.Fatalf("input reordered: %v", xs)
	}
}

func TestSpreadAndRatio(t *testing.T) {
	if lo, hi := Spread([]float64{2, 5, 1}); lo != 1 || hi != 5 {
		t.Errorf("Spread = %v, %v; want 1, 5", lo, hi)
	}
	if lo, hi := Spread[int](nil); lo != 0 || hi != 0 {
		t.Errorf("Spread(nil) = %v, %v; want 0, 0", lo, hi)
	}
	if r := Ratio(1, 4); r != 0.25 {
		t.Errorf("Ratio(1, 4) = %v", r)
	}
	if r := Ratio(1, 0); !math.IsNaN(r) {
		t.Errorf("Ratio(1, 0) = %v, want NaN", r)
	}
	if s := Ms(1500 * time.Microsecond); s != "1.5ms" {
		t.Errorf("Ms = %q", s)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}
