// Package knob reads the environment variables that set a bench program's
// defaults (SHOAL_BENCH_REPS, SHOAL_BENCH_SECONDS, ...), so that CI can
// shorten a run without flags. A knob that is unset or empty leaves the
// default alone; one that does not parse is an error naming it.
package knob

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Env is the value of the environment variable name, or def when it is
// unset or empty.
func Env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Ints sets each *dst whose variable is set to its value, a whole number.
func Ints(knobs map[string]*int) error {
	for name, dst := range knobs {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: %w", name, v, err)
			}
			*dst = n
		}
	}
	return nil
}

// Seconds sets each *dst whose variable is set to its value, read by
// ParseSeconds.
func Seconds(knobs map[string]*time.Duration) error {
	return durations(knobs, ParseSeconds)
}

// Durations sets each *dst whose variable is set to its value, a Go
// duration such as "90s".
func Durations(knobs map[string]*time.Duration) error {
	return durations(knobs, time.ParseDuration)
}

func durations(knobs map[string]*time.Duration, parse func(string) (time.Duration, error)) error {
	for name, dst := range knobs {
		if v := os.Getenv(name); v != "" {
			d, err := parse(v)
			if err != nil {
				return fmt.Errorf("%s=%q: %w", name, v, err)
			}
			*dst = d
		}
	}
	return nil
}

// ParseSeconds reads "10" as ten seconds, or a Go duration such as "1m".
func ParseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}
