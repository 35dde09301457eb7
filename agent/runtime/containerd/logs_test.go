package containerd

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/waitfor"
)

// TestLogRotation: the shim appends to the attempt's log, so copy-truncate
// works as in the process driver, and a follower sees the lines in order
// across rotations.
func TestLogRotation(t *testing.T) {
	// About 80 bytes a line; the writer sends the next line once the
	// follower has read the last one (or a line was lost, see below), so
	// rotations (one every ~37 lines) never outrun the follower's poll
	// (internal/logfile), as they must not for it to see every rotated part.
	const lines, maxBytes = 150, 3000
	cfg := testConfig(t)
	cfg.MaxLogBytes = maxBytes
	cfg.LogCheckInterval = 5 * time.Millisecond
	d := openDriver(t, cfg)
	ip, err := d.SetupPodNetwork(t.Context(), testPod)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.Start(t.Context(), testPod, testapp("chatty", "serve", "--port", "8080"), 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Logs(t.Context(), st.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitfor.True(t, wait, "the server to answer", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://%s:8080/healthz", ip))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	// The requests go on while the follower reads, as a container's
	// output does.
	errc := make(chan error, 1)
	progress := make(chan int, lines)
	go func() {
		defer close(errc)
		read := -1
		for i := range lines {
			resp, err := http.Get(fmt.Sprintf("http://%s:8080/line%d", ip, i))
			if err != nil {
				errc <- err
				return
			}
			resp.Body.Close()
			// Wait for the follower to read line i, with a deadline: a
			// line lost to copy-truncate never arrives.
			deadline := time.After(2 * time.Second)
			for read < i {
				select {
				case read = <-progress:
				case <-deadline:
					read = i
				}
			}
		}
	}()
	defer func() {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}()

	// Copy-truncate may lose a line written in the instant between the
	// last copy and the truncate: a few may be missing, never repeated or
	// reordered.
	sc := bufio.NewScanner(r)
	last, seen := -1, 0
	for last < lines-1 && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[2], "/line") {
			continue // the server's own lines and /healthz
		}
		n, err := strconv.Atoi(strings.TrimPrefix(f[2], "/line"))
		if err != nil || n <= last {
			t.Fatalf("follow read %q after line%d", sc.Text(), last)
		}
		last, seen = n, seen+1
		progress <- n
	}
	if last != lines-1 || seen < lines*9/10 {
		t.Fatalf("follow read %d lines, the last line%d; want line%d and at most a few lost", seen, last, lines-1)
	}
	if seen != lines {
		t.Logf("%d lines lost to copy-truncate", lines-seen)
	}
	if _, err := os.Stat(d.files.Log(st.ID) + ".1"); err != nil {
		t.Fatalf("no rotated log: %v", err)
	}
	if fi, err := os.Stat(d.files.Log(st.ID)); err != nil || fi.Size() > 3*maxBytes {
		t.Fatalf("log after rotations: %v, %v", fi.Size(), err)
	}
}
