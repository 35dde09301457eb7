// Command labnet makes or removes the network of `make lab`: nodes as
// network namespaces on one bridge (package e2e/lab).
//
//	labnet up -name demo -nodes 3    # prints "NETNS IP" per node
//	labnet down -name demo -nodes 3
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/shoal-dev/shoal/e2e/lab"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: labnet up|down [-name NAME] [-nodes N]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	name := fs.String("name", "demo", "lab name (bridge lab<name>, namespaces lab<name>-nN)")
	nodes := fs.Int("nodes", 3, "nodes")
	_ = fs.Parse(os.Args[2:])
	if err := lab.Available(); err != nil {
		fmt.Fprintln(os.Stderr, "labnet:", err)
		os.Exit(1)
	}
	var err error
	switch os.Args[1] {
	case "up":
		var l *lab.Lab
		if l, err = lab.Up(lab.Config{Name: *name, Nodes: *nodes}); err == nil {
			for _, n := range l.Nodes {
				fmt.Println(n.NetNS, n.IP)
			}
		}
	case "down":
		err = lab.Plan(lab.Config{Name: *name, Nodes: *nodes}).Down()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labnet:", err)
		os.Exit(1)
	}
}
