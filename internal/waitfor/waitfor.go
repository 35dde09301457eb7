// Package waitfor is the one test helper that waits on a condition with a
// deadline, polling it, so that tests never sleep in place of
// synchronisation.
package waitfor

import (
	"fmt"
	"time"
)

// T is the part of testing.TB the helper needs.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Interval is how often a condition is polled.
const Interval = 20 * time.Millisecond

// Cond polls cond until it returns true or d passes; then it fails the test
// naming what it waited for and the last state cond described.
func Cond(t T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", d, what, last)
		}
		<-tick.C
	}
}

// True is Cond for a condition with no state worth printing.
func True(t T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	Cond(t, d, what, func() (bool, string) { return cond(), "condition false" })
}

// Until polls fn until it returns nil or d passes, and returns fn's last
// error (nil on success). For callers that are not tests.
func Until(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", d, err)
		}
		<-tick.C
	}
}
