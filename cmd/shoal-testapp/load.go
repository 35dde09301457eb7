package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// dutyPeriod is the cycle a burning goroutine keeps busy for its share of:
// short enough that a sampler measuring over a second sees a steady rate.
const dutyPeriod = 100 * time.Millisecond

// maxBurnMillicores bounds /burn/on.
const maxBurnMillicores = 64000

// burner keeps CPU busy at a rate switched over HTTP (serve's /burn): a
// load for autoscaling tests that can be turned off again, unlike burn.
// The zero value is off.
type burner struct {
	mu     sync.Mutex
	millis int // 0: off
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// set burns millis millicores from now on, spread over as many goroutines
// as whole cores are needed, each busy for its share of every dutyPeriod;
// 0 stops.
func (b *burner) set(millis int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		b.cancel()
		b.wg.Wait()
		b.cancel = nil
	}
	b.millis = millis
	if millis <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	cores := (millis + 999) / 1000
	for i := range cores {
		share := millis / cores
		if i < millis%cores {
			share++
		}
		b.wg.Go(func() { dutyCycle(ctx, share) })
	}
}

// rate is the millicores burned now; 0 when off.
func (b *burner) rate() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.millis
}

// dutyCycle keeps one core busy for millis/1000 of every dutyPeriod until
// ctx ends.
func dutyCycle(ctx context.Context, millis int) {
	busy := dutyPeriod * time.Duration(millis) / 1000
	idle := time.NewTimer(0)
	defer idle.Stop()
	for {
		start := time.Now()
		x := uint64(1)
		for time.Since(start) < busy && ctx.Err() == nil {
			for range 1 << 12 {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		sink.Add(x)
		// Pacing a workload, not waiting for an event: the rest of the
		// period is idle by design.
		idle.Reset(dutyPeriod - time.Since(start))
		select {
		case <-ctx.Done():
			return
		case <-idle.C:
		}
	}
}

// burnDefault is the rate /burn/on burns without ?millicores: env
// BURN_MILLICORES, else one core.
func burnDefault() (int, error) {
	s := os.Getenv("BURN_MILLICORES")
	if s == "" {
		return 1000, nil
	}
	n, err := parseMillicores(s)
	if err != nil {
		return 0, fmt.Errorf("BURN_MILLICORES: %w", err)
	}
	return n, nil
}

func parseMillicores(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxBurnMillicores {
		return 0, fmt.Errorf("%q: want millicores from 1 to %d", s, maxBurnMillicores)
	}
	return n, nil
}

// burnHandlers serve /burn: GET says "off" or "on 250m"; POST /burn/on
// [?millicores=N] starts burning N (default def), POST /burn/off stops.
func burnHandlers(mux *http.ServeMux, b *burner, def int) {
	mux.HandleFunc("GET /burn", func(w http.ResponseWriter, r *http.Request) {
		if m := b.rate(); m > 0 {
			fmt.Fprintf(w, "on %dm\n", m)
			return
		}
		fmt.Fprintln(w, "off")
	})
	mux.HandleFunc("POST /burn/on", func(w http.ResponseWriter, r *http.Request) {
		m := def
		if s := r.URL.Query().Get("millicores"); s != "" {
			n, err := parseMillicores(s)
			if err != nil {
				http.Error(w, "millicores "+err.Error(), http.StatusBadRequest)
				return
			}
			m = n
		}
		b.set(m)
		fmt.Fprintf(w, "on %dm\n", m)
	})
	mux.HandleFunc("POST /burn/off", func(w http.ResponseWriter, r *http.Request) {
		b.set(0)
		fmt.Fprintln(w, "off")
	})
}
