// Package cli is the main function every bench program shares: parse the
// arguments into a config, run it until it ends or SIGINT/SIGTERM stops
// it, and exit 2 on bad arguments, 1 on a failed run.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main runs the program name: parse reads os.Args[1:]; run gets a context
// that ends on SIGINT or SIGTERM, stdout and stderr. When the signal came,
// run's error is prefixed with interrupted (such as "interrupted").
// Errors are printed on stderr after "name: ".
func Main[C any](name, interrupted string, parse func([]string) (C, error), run func(context.Context, C, io.Writer, io.Writer) error) {
	cfg, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout, os.Stderr)
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", interrupted, err)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Stopped is the interrupted prefix of a program that starts processes.
const Stopped = "interrupted; every process it started is stopped"
