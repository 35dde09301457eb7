package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/e2e/harness"
)

// TestGetWatchStreamsChanges: `get -w` prints each change applied through
// any agent as it happens.
func TestGetWatchStreamsChanges(t *testing.T) {
	skipShort(t)
	c := harness.New(t, 3, harness.Options{})
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 0)
	bin, _ := harness.Binary()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--server", c.Agents[2].GRPC(), "get", "configmaps", "-w", "-o", "json", "--consistency", "local")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() k8sObject {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("watch ended early")
			}
			var o k8sObject
			if err := json.Unmarshal([]byte(l), &o); err != nil {
				t.Fatalf("watch line %q: %v", l, err)
			}
			return o
		case <-ctx.Done():
			t.Fatal("no watch event in time")
		}
		return k8sObject{}
	}
	// The watch starts after its list; writes through another agent show up.
	for _, v := range []string{"1", "2"} {
		for {
			r := c.CLI(c.Agents[0], nil, "apply", "-f", configMap(t, "watched", v))
			if r.Code != 0 {
				t.Fatal(r.Stderr)
			}
			o := next()
			if o.Metadata.Name == "watched" && o.Data["v"] == v {
				break
			}
		}
	}
}
