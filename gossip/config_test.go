package gossip

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-dev/shoal/proto/shoalpb"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Name = "n1"
		c.BindAddr = "127.0.0.2"
		return c
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // substring; "" means valid
	}{
		{name: "default with name", mod: func(*Config) {}},
		{name: "port zero", mod: func(c *Config) { c.BindPort = 0 }},
		{name: "ipv6 bind", mod: func(c *Config) { c.BindAddr = "::1" }},
		{name: "32 byte key", mod: func(c *Config) { c.SecretKey = make([]byte, 32) }},
		{name: "transport without bind addr", mod: func(c *Config) {
			c.BindAddr = ""
			c.Transport = (&memberlist.MockNetwork{}).NewTransport("n1")
		}},
		{name: "no name", mod: func(c *Config) { c.Name = "" }, wantErr: "name"},
		{name: "hostname bind", mod: func(c *Config) { c.BindAddr = "localhost" }, wantErr: "bind addr"},
		{name: "port too big", mod: func(c *Config) { c.BindPort = 70000 }, wantErr: "bind port"},
		{name: "bad advertise", mod: func(c *Config) { c.AdvertiseAddr = "nope" }, wantErr: "advertise addr"},
		{name: "bad advertise port", mod: func(c *Config) { c.AdvertisePort = -1 }, wantErr: "advertise port"},
		{name: "short key", mod: func(c *Config) { c.SecretKey = []byte("short") }, wantErr: "secret key"},
		{name: "zero probe interval", mod: func(c *Config) { c.ProbeInterval = 0 }, wantErr: "probe interval"},
		{name: "probe timeout not below interval", mod: func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, wantErr: "probe timeout"},
		{name: "negative reclaim", mod: func(c *Config) { c.DeadNodeReclaimTime = -time.Second }, wantErr: "reclaim"},
		{name: "zero suspicion mult", mod: func(c *Config) { c.SuspicionMult = 0 }, wantErr: "suspicion mult"},
		{name: "zero event buffer", mod: func(c *Config) { c.EventBuffer = 0 }, wantErr: "event buffer"},
		{name: "oversize meta", mod: func(c *Config) {
			c.Meta = &shoalpb.NodeMeta{PodCidr: strings.Repeat("1", 600)}
		}, wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNormalizeJoinAddr(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "127.0.0.2", want: "127.0.0.2:7946"},
		{in: " 127.0.0.2 ", want: "127.0.0.2:7946"},
		{in: "127.0.0.2:8000", want: "127.0.0.2:8000"},
		{in: "::1", want: "[::1]:7946"},
		{in: "[::1]", want: "[::1]:7946"},
		{in: "[::1]:8000", want: "[::1]:8000"},
		{in: "node1.example", want: "node1.example:7946"},
		{in: "node1.example:8000", want: "node1.example:8000"},
		{in: "", wantErr: true},
		{in: ":7946", wantErr: true},
		{in: "127.0.0.2:0", wantErr: true},
		{in: "127.0.0.2:http", wantErr: true},
		{in: "127.0.0.2:99999", wantErr: true},
		{in: "[::1", wantErr: true},
		{in: "a:b:c", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeJoinAddr(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("normalizeJoinAddr(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// recordHandler keeps the level and message of every record.
type recordHandler struct{ recs *[]slog.Record }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	*h.recs = append(*h.recs, r)
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

func TestMemberlistLogLevels(t *testing.T) {
	tests := []struct {
		line      string
		wantLevel slog.Level
		wantMsg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n", slog.LevelDebug, "Stream connection from=127.0.0.1:1"},
		{"[INFO] memberlist: Suspect n2 has failed, no acks received\n", slog.LevelDebug, "Suspect n2 has failed, no acks received"},
		{"[WARN] memberlist: Refuting a suspect message (from: n3)\n", slog.LevelWarn, "Refuting a suspect message (from: n3)"},
		{"[ERR] memberlist: Push/Pull with n2 failed: EOF\n", slog.LevelWarn, "Push/Pull with n2 failed: EOF"},
		{"Err: Could not set the deadline\n", slog.LevelDebug, "Err: Could not set the deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.wantMsg, func(t *testing.T) {
			var recs []slog.Record
			l := newMemberlistLogger(slog.New(recordHandler{&recs}), nil)
			l.Print(tt.line)
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1", len(recs))
			}
			if recs[0].Level != tt.wantLevel || recs[0].Message != tt.wantMsg {
				t.Fatalf("got %v %q, want %v %q", recs[0].Level, recs[0].Message, tt.wantLevel, tt.wantMsg)
			}
		})
	}
}
