// Command memhog allocates and touches memory: the containerd driver's
// tests run it under a memory limit to see OOMKilled. It is built static
// and put in the test image as /memhog.
//
//	memhog        allocate until killed (gives up, exit 3, at 4 GiB)
//	memhog N      allocate N MiB, then sleep forever
//
// It ignores SIGTERM, which tests use to see Stop fall back to SIGKILL.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	signal.Ignore(syscall.SIGTERM)
	limit := 4 << 10 // MiB
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 0 {
			fmt.Fprintln(os.Stderr, "usage: memhog [MiB]")
			os.Exit(2)
		}
		limit = n
	}
	fmt.Println("allocating")
	var keep [][]byte
	for mib := 0; mib < limit; mib++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(j)
		}
		keep = append(keep, b)
	}
	if len(os.Args) == 1 {
		fmt.Fprintln(os.Stderr, "memhog: not killed after 4 GiB")
		os.Exit(3)
	}
	fmt.Println("allocated", len(keep), "MiB")
	for {
		time.Sleep(time.Hour)
	}
}
