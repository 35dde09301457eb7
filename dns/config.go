package dns

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// ServerConfig configures a Server. Zero fields take the values of
// DefaultConfig, except Addr, which the caller must set.
type ServerConfig struct {
	// Addr is the ip:port the server listens on, over UDP and TCP; port 0
	// picks a free port, reported by Server.Addr.
	Addr string
	// Domain is the cluster domain answered locally, "cluster.local" by
	// default.
	Domain string
	// Upstreams are the ip:port resolvers names outside the cluster are
	// forwarded to, tried in order. With none, such names get SERVFAIL.
	Upstreams []string
	// TTL is the TTL of cluster records, in seconds; short, because a
	// snapshot changes whenever pods come and go.
	TTL uint32
	// CacheSize bounds the number of forwarded answers cached; negative
	// disables the cache.
	CacheSize int
	// UpstreamTimeout bounds one exchange with one upstream.
	UpstreamTimeout time.Duration
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig is the configuration an agent starts from.
func DefaultConfig() ServerConfig {
	return ServerConfig{
		Domain:          DefaultDomain,
		TTL:             5,
		CacheSize:       10000,
		UpstreamTimeout: 2 * time.Second,
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultConfig()
	if c.Domain == "" {
		c.Domain = d.Domain
	}
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	if c.CacheSize == 0 {
		c.CacheSize = d.CacheSize
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = d.UpstreamTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field of c that cannot work, by name.
func (c ServerConfig) Validate() error {
	if _, err := netip.ParseAddrPort(c.Addr); err != nil {
		return fmt.Errorf("dns config: Addr %q is not ip:port: %w", c.Addr, err)
	}
	if _, ok := dns.IsDomainName(c.Domain); !ok || c.Domain == "" {
		return fmt.Errorf("dns config: Domain %q is not a domain name", c.Domain)
	}
	for i, u := range c.Upstreams {
		if _, err := netip.ParseAddrPort(u); err != nil {
			return fmt.Errorf("dns config: Upstreams[%d] %q is not ip:port: %w", i, u, err)
		}
		if u == c.Addr {
			return fmt.Errorf("dns config: Upstreams[%d] %q is this server's own Addr: queries would loop", i, u)
		}
	}
	if c.UpstreamTimeout < 0 {
		return errors.New("dns config: UpstreamTimeout is negative")
	}
	return nil
}
