// Command shoal is the whole of Shoal: `shoal agent` runs a node, every
// other verb is the CLI speaking gRPC to any agent.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/cmd/shoal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
