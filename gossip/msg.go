package gossip

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Gossip user messages (memberlist SendReliable / Delegate.NotifyMsg). The
// first byte is the message type; receivers ignore types they do not know.
const (
	// msgLeaveIntent: "I, <name>, am about to leave". memberlist v0.6 does
	// not tell an EventDelegate whether a node left or failed (Node.State is
	// always StateAlive in NotifyLeave: hashicorp/memberlist#293), so a
	// leaving node says so itself first, as Serf does.
	msgLeaveIntent byte = 1
)

// maxNameLen bounds node names in messages from the network.
const maxNameLen = 512

func encodeLeaveIntent(name string) []byte {
	return append([]byte{msgLeaveIntent}, name...)
}

// decodeLeaveIntent parses a message received from another node.
func decodeLeaveIntent(b []byte) (string, error) {
	if len(b) == 0 {
		return "", errors.New("decode gossip message: empty")
	}
	if b[0] != msgLeaveIntent {
		return "", fmt.Errorf("decode gossip message: unknown type %d", b[0])
	}
	name := b[1:]
	if len(name) == 0 || len(name) > maxNameLen || !utf8.Valid(name) {
		return "", fmt.Errorf("decode leave intent: bad node name (%d bytes)", len(name))
	}
	return string(name), nil
}
