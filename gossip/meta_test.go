package gossip

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

func fullMeta() *shoalpb.NodeMeta {
	return &shoalpb.NodeMeta{
		NodeId:           "n1",
		GrpcAddress:      "127.0.0.2:7948",
		RaftAddress:      "127.0.0.2:7947",
		HttpAddress:      "127.0.0.2:7949",
		Version:          "v0.1.0",
		CpuMillis:        4000,
		MemoryBytes:      8 << 30,
		Labels:           map[string]string{"zone": "a", "disk": "ssd", "rack": "r1", "tier": "edge"},
		BootstrapExpect:  3,
		RaftBootstrapped: true,
		PodCidr:          "10.244.1.0/24",
	}
}

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		meta *shoalpb.NodeMeta
		want *shoalpb.NodeMeta // after decode
	}{
		{name: "nil", meta: nil, want: &shoalpb.NodeMeta{}},
		{name: "empty", meta: &shoalpb.NodeMeta{}, want: &shoalpb.NodeMeta{}},
		{name: "full", meta: fullMeta(), want: fullMeta()},
		{name: "unicode labels", meta: &shoalpb.NodeMeta{Labels: map[string]string{"name": "poisson-🐟"}}, want: &shoalpb.NodeMeta{Labels: map[string]string{"name": "poisson-🐟"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeMeta(tt.meta)
			if err != nil {
				t.Fatalf("EncodeMeta: %v", err)
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatalf("DecodeMeta: %v", err)
			}
			if !proto.Equal(got, tt.want) {
				t.Fatalf("round trip: got %v, want %v", got, tt.want)
			}
			// memberlist compares meta bytes to detect updates: the same
			// facts must always encode the same way.
			for range 20 {
				again, err := EncodeMeta(tt.meta)
				if err != nil || !bytes.Equal(again, b) {
					t.Fatalf("EncodeMeta not deterministic: %x vs %x (err %v)", again, b, err)
				}
			}
		})
	}
}

func TestMetaErrors(t *testing.T) {
	big := &shoalpb.NodeMeta{Labels: map[string]string{"big": strings.Repeat("x", memberlist.MetaMaxSize)}}
	if _, err := EncodeMeta(big); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("EncodeMeta(oversize) = %v, want ErrMetaTooLarge", err)
	}
	tests := []struct {
		name     string
		in       []byte
		tooLarge bool
	}{
		{name: "truncated varint", in: []byte{0x30, 0xff}},
		{name: "truncated string", in: []byte{0x0a, 0x05, 'a'}},
		{name: "invalid utf8 in string field", in: []byte{0x0a, 0x01, 0xff}},
		{name: "bad wire type", in: []byte{0x0f}},
		{name: "over memberlist limit", in: make([]byte, memberlist.MetaMaxSize+1), tooLarge: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta, err := DecodeMeta(tt.in)
			if err == nil {
				t.Fatalf("DecodeMeta(%x) = %v, want error", tt.in, meta)
			}
			if got := errors.Is(err, ErrMetaTooLarge); got != tt.tooLarge {
				t.Fatalf("DecodeMeta(%x) error %v: ErrMetaTooLarge = %v, want %v", tt.in, err, got, tt.tooLarge)
			}
		})
	}
}

// FuzzDecodeMeta feeds arbitrary gossip metadata (what a remote or hostile
// node can send) to DecodeMeta: it must never panic, and what it accepts
// must survive a round trip.
func FuzzDecodeMeta(f *testing.F) {
	full, err := EncodeMeta(fullMeta())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte{})
	f.Add(full[:len(full)/2])
	f.Add([]byte{0x0a, 0x01, 0xff})
	f.Add([]byte{0x42, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add(bytes.Repeat([]byte{0x42, 0x02, 0x0a, 0x00}, 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		meta, err := DecodeMeta(b)
		if err != nil {
			if meta != nil {
				t.Fatalf("DecodeMeta returned both %v and error %v", meta, err)
			}
			return
		}
		enc, err := EncodeMeta(meta)
		if errors.Is(err, ErrMetaTooLarge) {
			return // re-encoding may grow (e.g. map entries gain explicit keys)
		}
		if err != nil {
			t.Fatalf("EncodeMeta of decoded %v: %v", meta, err)
		}
		again, err := DecodeMeta(enc)
		if err != nil {
			t.Fatalf("DecodeMeta of re-encoded %x: %v", enc, err)
		}
		if !proto.Equal(meta, again) {
			t.Fatalf("round trip changed meta: %v -> %v", meta, again)
		}
	})
}
