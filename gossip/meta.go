package gossip

import (
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

// ErrMetaTooLarge is returned when encoded node facts do not fit in
// memberlist's per-node metadata (memberlist.MetaMaxSize bytes).
var ErrMetaTooLarge = errors.New("node meta too large")

// EncodeMeta encodes node facts for gossip. A nil meta encodes to no bytes.
// It fails with ErrMetaTooLarge when the result exceeds memberlist.MetaMaxSize.
func EncodeMeta(meta *shoalpb.NodeMeta) ([]byte, error) {
	if meta == nil {
		return nil, nil
	}
	// Deterministic so that the same facts always give the same bytes:
	// memberlist compares meta bytes and would report a spurious update for
	// every re-advertisement if the label map were encoded in random order.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode node meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("encode node meta: %d bytes, limit %d: %w", len(b), memberlist.MetaMaxSize, ErrMetaTooLarge)
	}
	return b, nil
}

// DecodeMeta decodes node facts received from another node. Empty input
// gives an empty, non-nil NodeMeta. The input comes from the network, so any
// malformed input is an error, never a panic.
func DecodeMeta(b []byte) (*shoalpb.NodeMeta, error) {
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("decode node meta: %d bytes, limit %d: %w", len(b), memberlist.MetaMaxSize, ErrMetaTooLarge)
	}
	meta := &shoalpb.NodeMeta{}
	if err := proto.Unmarshal(b, meta); err != nil {
		return nil, fmt.Errorf("decode node meta: %w", err)
	}
	return meta, nil
}
