package jobs

import (
	"errors"
	"fmt"
	"maps"
	"time"
	"unicode"
)

// DefaultQueue is the queue tasks go to when no queue is named.
const DefaultQueue = "default"

// NoRetries as EnqueueOpts.MaxRetries means: dead-letter after the first failure.
const NoRetries = -1

// EnqueueOpts are per-task options. A zero field means "not set": the args
// type's EnqueueOpts (JobArgsWithOpts) fill it, then the runner's defaults.
type EnqueueOpts struct {
	Queue      string            // default DefaultQueue
	Delay      time.Duration     // run no earlier than now+Delay; excludes RunAt
	RunAt      time.Time         // run no earlier than RunAt; excludes Delay
	MaxRetries int               // retries after the first attempt; NoRetries for none; 0: default (runner's, 4)
	Timeout    time.Duration     // time limit per attempt; 0: worker's or runner's default (10 min)
	RetryDelay time.Duration     // fixed delay between attempts, instead of the backoff policy
	ID         string            // task ID for idempotency; default a random UUID
	Meta       map[string]string // carried untouched to the handler and the dashboard
}

// merge returns o with unset fields taken from defaults.
func (o EnqueueOpts) merge(defaults EnqueueOpts) EnqueueOpts {
	if o.Queue == "" {
		o.Queue = defaults.Queue
	}
	if o.Delay == 0 && o.RunAt.IsZero() {
		o.Delay, o.RunAt = defaults.Delay, defaults.RunAt
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = defaults.MaxRetries
	}
	if o.Timeout == 0 {
		o.Timeout = defaults.Timeout
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = defaults.RetryDelay
	}
	if len(defaults.Meta) > 0 {
		meta := maps.Clone(defaults.Meta)
		maps.Copy(meta, o.Meta)
		o.Meta = meta
	}
	return o
}

const (
	maxIDLen    = 128
	maxMetaKeys = 64
	maxMetaSize = 16 << 10
)

// validate checks the options against the consumer timeout the client assumes.
func (o EnqueueOpts) validate(consumerTimeout time.Duration) error {
	var errs []error
	if o.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay %s is negative", o.Delay))
	}
	if o.Delay != 0 && !o.RunAt.IsZero() {
		errs = append(errs, errors.New("set Delay or RunAt, not both"))
	}
	if o.MaxRetries < NoRetries {
		errs = append(errs, fmt.Errorf("max retries %d: use 0 for the default, NoRetries (-1) for none, or a positive count", o.MaxRetries))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", o.Timeout))
	}
	if o.Timeout >= consumerTimeout {
		errs = append(errs, fmt.Errorf("timeout %s is not below the broker's consumer timeout %s: RabbitMQ would close the channel mid-task", o.Timeout, consumerTimeout))
	}
	if o.RetryDelay < 0 {
		errs = append(errs, fmt.Errorf("retry delay %s is negative", o.RetryDelay))
	}
	if err := validateID(o.ID); err != nil {
		errs = append(errs, err)
	}
	if len(o.Meta) > maxMetaKeys {
		errs = append(errs, fmt.Errorf("meta has %d keys, at most %d allowed", len(o.Meta), maxMetaKeys))
	}
	size := 0
	for k, v := range o.Meta {
		size += len(k) + len(v)
	}
	if size > maxMetaSize {
		errs = append(errs, fmt.Errorf("meta is %d bytes, at most %d allowed", size, maxMetaSize))
	}
	return errors.Join(errs...)
}

func validateID(id string) error {
	if len(id) > maxIDLen {
		return fmt.Errorf("task ID is %d bytes, at most %d allowed", len(id), maxIDLen)
	}
	for _, r := range id {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return fmt.Errorf("task ID %q: use printable ASCII without spaces", id)
		}
	}
	return nil
}
