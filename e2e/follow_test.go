package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"sync"
	"testing"
)

// follower runs `shoal logs -f` in the background.
type follower struct {
	cancel context.CancelFunc
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
}

func (f *follower) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(p)
}

func startFollow(t *testing.T, bin, server, pod string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel}
	f.cmd = exec.CommandContext(ctx, bin, "--server", server, "logs", "-f", pod)
	f.cmd.Stdout = f
	if err := f.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.stop() })
	return f
}

// stop ends the follower and returns what it printed.
func (f *follower) stop() string {
	f.cancel()
	_ = f.cmd.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String()
}
