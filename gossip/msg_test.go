package gossip

import (
	"bytes"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestLeaveIntentCodec(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr bool
	}{
		{name: "round trip", in: encodeLeaveIntent("n1"), want: "n1"},
		{name: "unicode name", in: encodeLeaveIntent("poisson-🐟"), want: "poisson-🐟"},
		{name: "empty", in: nil, wantErr: true},
		{name: "no name", in: []byte{msgLeaveIntent}, wantErr: true},
		{name: "unknown type", in: []byte{99, 'n'}, wantErr: true},
		{name: "invalid utf8", in: []byte{msgLeaveIntent, 0xff}, wantErr: true},
		{name: "name too long", in: encodeLeaveIntent(strings.Repeat("n", maxNameLen+1)), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeLeaveIntent(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("decodeLeaveIntent(%x) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzDecodeLeaveIntent: gossip user messages come from the network.
func FuzzDecodeLeaveIntent(f *testing.F) {
	f.Add(encodeLeaveIntent("n1"))
	f.Add([]byte{})
	f.Add([]byte{msgLeaveIntent, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := decodeLeaveIntent(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeLeaveIntent(name), b) {
			t.Fatalf("re-encoding %q gives %x, want %x", name, encodeLeaveIntent(name), b)
		}
	})
}

// bareMesh is a Mesh without memberlist, to drive the delegate directly.
func bareMesh(name string) *Mesh {
	return &Mesh{
		name:    name,
		log:     slog.New(slog.DiscardHandler),
		members: make(map[string]Member),
		events:  make(chan Event, 16),
		subs:    make(map[chan struct{}]struct{}),
		leaving: make(map[string]time.Time),
	}
}

func TestLeaveIntentClassification(t *testing.T) {
	peer := &memberlist.Node{Name: "n2", Addr: net.ParseIP("127.0.0.2"), Port: 7946}
	tests := []struct {
		name  string
		steps func(d *delegate)
		want  []EventType // after n2's join
		final Status
	}{
		{
			name:  "failure without intent",
			steps: func(d *delegate) { d.NotifyLeave(peer) },
			want:  []EventType{EventFailed},
			final: StatusDead,
		},
		{
			name: "intent before leave",
			steps: func(d *delegate) {
				d.NotifyMsg(encodeLeaveIntent("n2"))
				d.NotifyLeave(peer)
			},
			want:  []EventType{EventLeave},
			final: StatusLeft,
		},
		{
			name: "intent after leave message",
			steps: func(d *delegate) {
				d.NotifyLeave(peer)
				d.NotifyMsg(encodeLeaveIntent("n2"))
			},
			want:  []EventType{EventFailed, EventLeave},
			final: StatusLeft,
		},
		{
			name: "rejoin clears intent",
			steps: func(d *delegate) {
				d.NotifyMsg(encodeLeaveIntent("n2"))
				d.NotifyJoin(peer)
				d.NotifyLeave(peer)
			},
			want:  []EventType{EventJoin, EventFailed},
			final: StatusDead,
		},
		{
			name: "stale intent",
			steps: func(d *delegate) {
				d.NotifyMsg(encodeLeaveIntent("n2"))
				d.m.leaving["n2"] = time.Now().Add(-2 * leaveIntentTTL)
				d.NotifyLeave(peer)
			},
			want:  []EventType{EventFailed},
			final: StatusDead,
		},
		{
			name: "intent for unknown node is ignored",
			steps: func(d *delegate) {
				d.NotifyMsg(encodeLeaveIntent("stranger"))
				d.NotifyLeave(peer)
			},
			want:  []EventType{EventFailed},
			final: StatusDead,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := bareMesh("n1")
			d := &delegate{m: m}
			d.NotifyJoin(peer)
			<-m.events
			tt.steps(d)
			var got []EventType
			for len(m.events) > 0 {
				got = append(got, (<-m.events).Type)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
			if st := m.members["n2"].Status; st != tt.final {
				t.Errorf("status %s, want %s", st, tt.final)
			}
		})
	}
}
