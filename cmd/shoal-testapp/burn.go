package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// burnCmd keeps --cpu cores busy and holds --mem of memory until ctx ends
// or the optional DURATION passes.
func burnCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("burn", flag.ContinueOnError)
	cpus := fs.Int("cpu", 1, "cores to keep busy")
	mem := fs.String("mem", "0", "memory to hold: bytes, or with a Ki, Mi or Gi suffix")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *cpus < 0 {
		return usageError{fmt.Errorf("--cpu %d is negative", *cpus)}
	}
	size, err := parseSize(*mem)
	if err != nil {
		return usageError{fmt.Errorf("--mem: %w", err)}
	}
	switch len(pos) {
	case 0:
	case 1:
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			return usageError{err}
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	default:
		return usageError{errors.New("want at most one DURATION")}
	}

	held := hold(size)
	fmt.Fprintf(out, "burning %d cpu, holding %d bytes\n", *cpus, len(held))
	var wg sync.WaitGroup
	for range *cpus {
		wg.Go(func() { spin(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	runtime.KeepAlive(held)
	return nil
}

// hold allocates n bytes and writes every page, so they are resident.
func hold(n int64) []byte {
	b := make([]byte, n)
	page := os.Getpagesize()
	for i := 0; i < len(b); i += page {
		b[i] = 1
	}
	return b
}

// spin keeps one core busy until ctx ends.
func spin(ctx context.Context) {
	x := uint64(1)
	for ctx.Err() == nil {
		for range 1 << 16 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink.Add(x)
}

// sink keeps spin's arithmetic from being optimised away.
var sink atomic.Uint64

// parseSize parses "20Mi", "512Ki", "1Gi" or a number of bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := s
	for suffix, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			num, mult = n, m
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q: want a size like 20Mi, 512Ki or a number of bytes", s)
	}
	return n * mult, nil
}
