package jobs

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// eventLog batches events and appends them to the broker's events log every
// interval (or sooner when a batch fills). It never blocks the caller: when
// the buffer is full, events are dropped and counted. Events wait in a
// slice under a mutex rather than in a channel, so that recording one does
// not wake the batcher (two events a task, tens of thousands a second).
//
// An attempt that ends before its "started" event was flushed is logged by
// its outcome alone: the outcome event carries the worker and the run time,
// so its start is its time less its duration, and most short tasks cost one
// event in the log instead of two. (OnEvent still sees every event.)
type eventLog struct {
	broker   broker.Broker
	interval time.Duration
	logger   *slog.Logger
	onEvent  func(Event)

	mu      sync.Mutex
	buf     []Event        // waiting for the batcher, at most eventBuffer
	started map[string]int // task ID -> index in buf of its unflushed started event
	full    chan struct{}  // capacity 1: buf holds a full batch
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
		started: make(map[string]int), full: make(chan struct{}, 1), stop: make(chan struct{})}
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
	l.mu.Lock()
	if len(l.buf) >= eventBuffer {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	switch e.Type {
	case EventStarted:
		l.started[e.TaskID] = len(l.buf)
	case EventSucceeded, EventRetrying, EventDead, EventCancelled:
		if i, ok := l.started[e.TaskID]; ok {
			delete(l.started, e.TaskID)
			if s := &l.buf[i]; s.Attempt == e.Attempt && s.Worker == e.Worker && e.Duration > 0 {
				s.Type = "" // superseded: left out when flushed
			}
		}
	}
	l.buf = append(l.buf, e)
	n := len(l.buf)
	l.mu.Unlock()
	if n == eventMaxBatch {
		select {
		case l.full <- struct{}{}:
		default:
		}
	}
}

// pending reports how many events wait for the batcher.
func (l *eventLog) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buf)
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
	var spare []Event
	for {
		stopping := false
		select {
		case <-ticker.C:
		case <-l.full:
		case <-l.stop:
			stopping = true
		}
		l.mu.Lock()
		batch := l.buf
		l.buf = spare[:0]
		clear(l.started)
		l.mu.Unlock()
		batch = slices.DeleteFunc(batch, func(e Event) bool { return e.Type == "" })
		for rest := batch; len(rest) > 0; {
			n := min(len(rest), eventMaxBatch)
			l.flush(rest[:n])
			rest = rest[n:]
		}
		clear(batch) // let the events' args go
		spare = batch[:0]
		if stopping {
			return
		}
	}
}

func (l *eventLog) flush(batch []Event) {
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
}
