// Package dns will own the cluster DNS server every agent runs: answers
// built from the local replica, forwarding of other names upstream. It must
// not import agent or cmd.
//
// It holds no code yet: it arrives with the services capability.
package dns
