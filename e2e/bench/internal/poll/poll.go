// Package poll waits for a condition the way the bench programs do: poll a
// function until it succeeds, the context ends or a time limit passes.
// (internal/waitfor.Until takes no context; a bench must stop at once on
// SIGINT.)
package poll

import (
	"context"
	"fmt"
	"time"
)

// Until polls fn until it returns nil, ctx ends or d passes, giving each
// poll at most two seconds and waiting 50ms between polls.
func Until(ctx context.Context, d time.Duration, fn func(context.Context) error) error {
	return UntilEvery(ctx, d, 2*time.Second, 50*time.Millisecond, fn)
}

// UntilEvery is Until with each poll given at most perPoll and a pause of
// every between polls. After d, the error carries fn's last answer.
func UntilEvery(ctx context.Context, d, perPoll, every time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(d)
	for {
		pctx, cancel := context.WithTimeout(ctx, perPoll)
		err := fn(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", d, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
