package process

import (
	"errors"
	"log/slog"
	"time"
)

// Config configures a Driver. Start from DefaultConfig and set Dir.
type Config struct {
	// Dir holds the driver's state and the containers' files; the agent
	// passes DATA_DIR/runtime. Required.
	Dir string
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// MaxLogBytes is the size above which an attempt's log is rotated.
	MaxLogBytes int64
	// LogCheckInterval is how often log sizes are checked for rotation.
	LogCheckInterval time.Duration
	// PollInterval is how often re-adopted processes (which are not children
	// of this agent, so send no SIGCHLD) are checked for exit.
	PollInterval time.Duration
	// Clock stamps StartedAt and FinishedAt.
	Clock func() time.Time
}

// DefaultConfig returns the defaults: 10 MiB logs checked every second,
// re-adopted processes polled twice a second.
func DefaultConfig() Config {
	return Config{
		MaxLogBytes:      10 << 20,
		LogCheckInterval: time.Second,
		PollInterval:     500 * time.Millisecond,
		Clock:            time.Now,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("process runtime config: dir: must not be empty")
	case c.MaxLogBytes <= 0:
		return errors.New("process runtime config: max log bytes: must be positive")
	case c.LogCheckInterval <= 0:
		return errors.New("process runtime config: log check interval: must be positive")
	case c.PollInterval <= 0:
		return errors.New("process runtime config: poll interval: must be positive")
	case c.Clock == nil:
		return errors.New("process runtime config: clock: must not be nil")
	}
	return nil
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.MaxLogBytes == 0 {
		c.MaxLogBytes = def.MaxLogBytes
	}
	if c.LogCheckInterval == 0 {
		c.LogCheckInterval = def.LogCheckInterval
	}
	if c.PollInterval == 0 {
		c.PollInterval = def.PollInterval
	}
	if c.Clock == nil {
		c.Clock = def.Clock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
