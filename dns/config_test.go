package dns

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	valid := func() ServerConfig {
		c := DefaultConfig()
		c.Addr = "127.0.0.1:53"
		c.Upstreams = []string{"10.0.0.2:53"}
		return c
	}
	tests := []struct {
		name    string
		mutate  func(*ServerConfig)
		wantErr string // "" for valid
	}{
		{name: "default with Addr", mutate: func(*ServerConfig) {}},
		{name: "no Addr", mutate: func(c *ServerConfig) { c.Addr = "" }, wantErr: "Addr"},
		{name: "Addr without port", mutate: func(c *ServerConfig) { c.Addr = "127.0.0.1" }, wantErr: "Addr"},
		{name: "bad Domain", mutate: func(c *ServerConfig) { c.Domain = "a..b" }, wantErr: "Domain"},
		{name: "upstream hostname", mutate: func(c *ServerConfig) { c.Upstreams = []string{"dns.google:53"} }, wantErr: "Upstreams[0]"},
		{name: "upstream is ourselves", mutate: func(c *ServerConfig) { c.Upstreams = []string{"127.0.0.1:53"} }, wantErr: "loop"},
		{name: "negative timeout", mutate: func(c *ServerConfig) { c.UpstreamTimeout = -1 }, wantErr: "UpstreamTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewServerFillsDefaults(t *testing.T) {
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.cfg.Domain != DefaultDomain || s.cfg.TTL != 5 || s.fwd.cache == nil || s.cfg.UpstreamTimeout <= 0 {
		t.Fatalf("defaults not applied: %+v", s.cfg)
	}
	off, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { off.Close() })
	if off.fwd.cache != nil {
		t.Error("negative CacheSize left the cache on")
	}
}
