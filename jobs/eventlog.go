package jobs

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// eventLog batches events and appends them to the broker's events log every
// interval (or sooner when a batch fills). It never blocks the caller: when
// the buffer is full, events are dropped and counted.
type eventLog struct {
	broker   broker.Broker
	interval time.Duration
	logger   *slog.Logger
	onEvent  func(Event)

	ch      chan Event
	dropped atomic.Int64
	stop    chan struct{}
	done    sync.WaitGroup
}

const (
	eventBuffer   = 16384
	eventMaxBatch = 2000
)

func newEventLog(b broker.Broker, interval time.Duration, logger *slog.Logger, onEvent func(Event)) *eventLog {
	return &eventLog{broker: b, interval: interval, logger: logger, onEvent: onEvent,
		ch: make(chan Event, eventBuffer), stop: make(chan struct{})}
}

// emit records e. A nil eventLog only calls nothing; it is how events are off.
func (l *eventLog) emit(e Event) {
	if l == nil {
		return
	}
	if l.onEvent != nil {
		l.onEvent(e)
	}
	if l.broker == nil {
		return
	}
	select {
	case l.ch <- e:
	default:
		l.dropped.Add(1)
	}
}

// Start runs the batcher until Stop.
func (l *eventLog) Start() {
	if l == nil || l.broker == nil {
		return
	}
	l.done.Add(1)
	go l.run()
}

// Stop flushes what is buffered (bounded by ctx) and ends the batcher.
func (l *eventLog) Stop(ctx context.Context) {
	if l == nil || l.broker == nil {
		return
	}
	close(l.stop)
	finished := make(chan struct{})
	go func() { l.done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
	}
}

func (l *eventLog) run() {
	defer l.done.Done()
	ticker := time.NewTicker(l.interval)
	defer ticker.Stop()
	batch := make([]Event, 0, 256)
	for {
		select {
		case e := <-l.ch:
			batch = append(batch, e)
			if len(batch) >= eventMaxBatch {
				batch = l.flush(batch)
			}
		case <-ticker.C:
			batch = l.flush(batch)
		case <-l.stop:
			for {
				select {
				case e := <-l.ch:
					batch = append(batch, e)
				default:
					l.flush(batch)
					return
				}
			}
		}
	}
}

func (l *eventLog) flush(batch []Event) []Event {
	if len(batch) == 0 {
		return batch
	}
	data, err := encodeEvents(batch)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = l.broker.AppendEvents(ctx, data)
		cancel()
	}
	if err != nil {
		l.dropped.Add(int64(len(batch)))
		l.logger.Warn("events not recorded", "count", len(batch), "err", err)
	}
	return batch[:0]
}
