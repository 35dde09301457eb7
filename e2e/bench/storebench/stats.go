package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs;
// zero for no samples. xs is not modified.
func percentile[T int64 | float64 | time.Duration](xs []T, p float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// median is the 50th percentile by nearest rank (the lower middle of an
// even count), so that it is always a measured value.
func median[T int64 | float64 | time.Duration](xs []T) T { return percentile(xs, 50) }

// spread is min and max.
func spread[T int64 | float64 | time.Duration](xs []T) (lo, hi T) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}

// ratio is a/b, or NaN when b is zero.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// ms prints a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

// payload is the 100-byte value every write carries: a ConfigMap spec for
// shoal and the same bytes as an etcd value. seq makes each write change
// the stored content.
func payload(seq int) []byte {
	b := fmt.Appendf(nil, `{"data":{"v":"%020d`, seq)
	for len(b) < 97 {
		b = append(b, 'x')
	}
	return append(b, `"}}`...)
}
