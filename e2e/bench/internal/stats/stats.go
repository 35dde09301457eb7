// Package stats holds the summary statistics the bench programs print:
// nearest-rank percentiles, medians, spreads and ratios. It does no IO.
package stats

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Number is what the helpers summarise.
type Number interface {
	int | int64 | float64 | time.Duration
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs;
// zero for no samples. xs is not modified.
func Percentile[T Number](xs []T, p float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Median is the 50th percentile by nearest rank (the lower middle of an
// even count), so that it is always a measured value.
func Median[T Number](xs []T) T { return Percentile(xs, 50) }

// Spread is the minimum and maximum; zeros for no samples.
func Spread[T Number](xs []T) (lo, hi T) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}

// Ratio is a/b, or NaN when b is zero.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// Ms prints a duration in milliseconds with one decimal.
func Ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
