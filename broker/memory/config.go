package memory

import (
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Broker. The zero value is ready to use: every field has
// a documented default.
type Config struct {
	// EventMaxBatches is how many event batches the events log keeps; the
	// oldest are dropped first. Default 100,000.
	EventMaxBatches int

	// EventMaxBytes bounds the total size of the retained event batches' data;
	// the oldest are dropped first. Default 64 MiB.
	EventMaxBytes int

	// EventMaxAge drops event batches older than this. Default 7 days, like
	// the RabbitMQ events stream (WIRE.md).
	EventMaxAge time.Duration

	// Logger receives the broker's few log lines (for instance a delayed
	// message dropped because its queue was deleted). Default: discarded.
	Logger *slog.Logger
}

// Defaults used for zero Config fields.
const (
	DefaultEventMaxBatches = 100_000
	DefaultEventMaxBytes   = 64 << 20
	DefaultEventMaxAge     = 7 * 24 * time.Hour
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.EventMaxBatches == 0 {
		c.EventMaxBatches = DefaultEventMaxBatches
	}
	if c.EventMaxBytes == 0 {
		c.EventMaxBytes = DefaultEventMaxBytes
	}
	if c.EventMaxAge == 0 {
		c.EventMaxAge = DefaultEventMaxAge
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.EventMaxBatches < 0:
		return fmt.Errorf("memory: Config.EventMaxBatches %d is negative", c.EventMaxBatches)
	case c.EventMaxBytes < 0:
		return fmt.Errorf("memory: Config.EventMaxBytes %d is negative", c.EventMaxBytes)
	case c.EventMaxAge < 0:
		return fmt.Errorf("memory: Config.EventMaxAge %v is negative", c.EventMaxAge)
	}
	return nil
}
