package main

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{name: "empty", xs: nil, p: 50, want: 0},
		{name: "one", xs: []float64{7}, p: 99, want: 7},
		{name: "median odd", xs: []float64{3, 1, 2}, p: 50, want: 2},
		{name: "median even takes lower middle", xs: []float64{4, 1, 3, 2}, p: 50, want: 2},
		{name: "p99 of 20 is the max", xs: seq(20), p: 99, want: 20},
		{name: "p90 of 20", xs: seq(20), p: 90, want: 18},
		{name: "p100", xs: seq(5), p: 100, want: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.xs, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
			}
		})
	}
}

func seq(n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[n-1-i] = float64(i + 1)
	}
	return xs
}

func TestSpreadAndRatio(t *testing.T) {
	lo, hi := spread([]time.Duration{3, 1, 2})
	if lo != 1 || hi != 3 {
		t.Errorf("spread = %v, %v; want 1, 3", lo, hi)
	}
	if r := ratio(1, 0); !math.IsNaN(r) {
		t.Errorf("ratio(1, 0) = %v, want NaN", r)
	}
}

func TestPayload(t *testing.T) {
	for _, n := range []int{0, 1, 123456789} {
		p := payload(n)
		if len(p) != 100 {
			t.Errorf("payload(%d) is %d bytes, want 100", n, len(p))
		}
		var v struct {
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(p, &v); err != nil || v.Data["v"] == "" {
			t.Errorf("payload(%d) = %s: not a ConfigMap spec: %v", n, p, err)
		}
	}
	if string(payload(1)) == string(payload(2)) {
		t.Error("payload does not change with seq")
	}
}
