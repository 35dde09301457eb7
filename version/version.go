// Package version holds the agent and CLI version, set at link time.
package version

// Version is set with -ldflags "-X github.com/shoal-dev/shoal/version.Version=...".
var Version = "dev"
