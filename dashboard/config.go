package dashboard

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/dashboard/internal/history"
)

// Config configures a Dashboard. Only Broker is required; every other field
// has the default its comment names.
type Config struct {
	// Broker supplies queue figures, dead letters and the events log.
	// Required. The dashboard does not close it.
	Broker broker.Broker

	// Logger receives the dashboard's logs. Default: slog.Default().
	Logger *slog.Logger

	// ReadOnly hides every control that changes something and refuses every
	// mutation (purge, retry, delete) with 403 Forbidden. Default: false.
	ReadOnly bool

	// BasicAuth, when set, requires HTTP basic authentication for everything
	// but /healthz. Default: nil, no authentication (see CheckListenAddr).
	BasicAuth *BasicAuth

	// RefreshInterval is how often pages refresh their live parts.
	// Default: 3 s. Minimum: 500 ms. Negative: pages never refresh.
	RefreshInterval time.Duration

	// Replay is how far back Run reads the retained events when it starts,
	// so a restarted dashboard shows what happened before. The events log
	// keeps 7 days; reading a long, busy window takes time at start.
	// Default: 24 h.
	Replay time.Duration

	// Queues are listed even before any event mentions them (queues are
	// otherwise learnt from events: RabbitMQ cannot list queues without its
	// management plugin). Default: none.
	Queues []string

	// MaxTasks is how many recent tasks are remembered. Default: 10,000.
	MaxTasks int
	// MaxTaskBytes bounds the approximate memory of remembered tasks (args,
	// errors, stacks). Default: 64 MiB.
	MaxTaskBytes int
	// MaxAttempts is how many attempts are remembered per task, the latest.
	// Default: 20.
	MaxAttempts int

	// WorkerOfflineAfter marks a worker offline when it has sent no heartbeat
	// for this long. Default: 15 s (three beats of the runner's default 5 s).
	WorkerOfflineAfter time.Duration
	// WorkerDropAfter removes a silent worker from the list. Default: 15 min.
	WorkerDropAfter time.Duration

	// DeadLimit is how many dead letters a page lists. Default: 100;
	// at most 1,000.
	DeadLimit int

	// BrokerTimeout bounds each broker call made for a request.
	// Default: 5 s.
	BrokerTimeout time.Duration
}

// BasicAuth is a user name and password for HTTP basic authentication.
type BasicAuth struct {
	User     string
	Password string
}

// Defaults of Config.
const (
	DefaultRefreshInterval = 3 * time.Second
	DefaultReplay          = 24 * time.Hour
	DefaultDeadLimit       = 100
	DefaultBrokerTimeout   = 5 * time.Second
	maxDeadLimit           = 1000
	minRefreshInterval     = 500 * time.Millisecond
)

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.Replay == 0 {
		c.Replay = DefaultReplay
	}
	if c.MaxTasks == 0 {
		c.MaxTasks = history.DefaultMaxTasks
	}
	if c.MaxTaskBytes == 0 {
		c.MaxTaskBytes = history.DefaultMaxBytes
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = history.DefaultMaxAttempts
	}
	if c.WorkerOfflineAfter == 0 {
		c.WorkerOfflineAfter = history.DefaultWorkerOfflineAfter
	}
	if c.WorkerDropAfter == 0 {
		c.WorkerDropAfter = history.DefaultWorkerDropAfter
	}
	if c.DeadLimit == 0 {
		c.DeadLimit = DefaultDeadLimit
	}
	if c.BrokerTimeout == 0 {
		c.BrokerTimeout = DefaultBrokerTimeout
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Broker == nil {
		errs = append(errs, errors.New("Broker is required"))
	}
	if c.BasicAuth != nil && (c.BasicAuth.User == "" || c.BasicAuth.Password == "") {
		errs = append(errs, errors.New("BasicAuth needs both a user and a password"))
	}
	if c.RefreshInterval > 0 && c.RefreshInterval < minRefreshInterval {
		errs = append(errs, fmt.Errorf("RefreshInterval %s is below the minimum %s", c.RefreshInterval, minRefreshInterval))
	}
	for name, d := range map[string]time.Duration{"Replay": c.Replay, "WorkerOfflineAfter": c.WorkerOfflineAfter,
		"WorkerDropAfter": c.WorkerDropAfter, "BrokerTimeout": c.BrokerTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", name, d))
		}
	}
	if c.WorkerDropAfter < c.WorkerOfflineAfter {
		errs = append(errs, fmt.Errorf("WorkerDropAfter %s is shorter than WorkerOfflineAfter %s", c.WorkerDropAfter, c.WorkerOfflineAfter))
	}
	for name, n := range map[string]int{"MaxTasks": c.MaxTasks, "MaxTaskBytes": c.MaxTaskBytes, "MaxAttempts": c.MaxAttempts} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s %d is negative", name, n))
		}
	}
	if c.DeadLimit < 0 || c.DeadLimit > maxDeadLimit {
		errs = append(errs, fmt.Errorf("DeadLimit %d: must be 1..%d", c.DeadLimit, maxDeadLimit))
	}
	for _, q := range c.Queues {
		if err := broker.ValidateQueueName(q); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) limits() history.Limits {
	return history.Limits{
		MaxTasks: c.MaxTasks, MaxBytes: c.MaxTaskBytes, MaxAttempts: c.MaxAttempts,
		WorkerOfflineAfter: c.WorkerOfflineAfter, WorkerDropAfter: c.WorkerDropAfter,
	}
}
