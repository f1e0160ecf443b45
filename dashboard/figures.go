package dashboard

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/dashboard/internal/history"
)

// statsCache keeps each queue's broker figures briefly, so that many open
// pages polling at once cost the broker one lookup per queue per second, and
// remembers queues the broker does not know for longer (queues seen in old
// events may have been deleted since).
type statsCache struct {
	broker  broker.Broker
	timeout time.Duration

	mu      sync.Mutex
	entries map[string]statsEntry
}

type statsEntry struct {
	stats broker.QueueStats
	err   error
	at    time.Time
}

const (
	statsTTL         = time.Second
	statsMissingTTL  = 30 * time.Second
	statsConcurrency = 8
	statsMaxEntries  = 4096
)

func newStatsCache(b broker.Broker, timeout time.Duration) *statsCache {
	return &statsCache{broker: b, timeout: timeout, entries: make(map[string]statsEntry)}
}

// get returns the figures of every named queue, asking the broker for those
// not fresh in the cache, several at a time.
func (c *statsCache) get(ctx context.Context, names []string) map[string]statsEntry {
	now := time.Now()
	out := make(map[string]statsEntry, len(names))
	var stale []string
	c.mu.Lock()
	for _, n := range names {
		e, ok := c.entries[n]
		ttl := statsTTL
		if errors.Is(e.err, broker.ErrQueueNotFound) {
			ttl = statsMissingTTL
		}
		if ok && now.Sub(e.at) < ttl {
			out[n] = e
		} else {
			stale = append(stale, n)
		}
	}
	c.mu.Unlock()
	if len(stale) == 0 {
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, statsConcurrency)
	for _, n := range stale {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, c.timeout)
			s, err := c.broker.Stats(cctx, n)
			cancel()
			mu.Lock()
			out[n] = statsEntry{stats: s, err: err, at: time.Now()}
			mu.Unlock()
		}()
	}
	wg.Wait()
	c.mu.Lock()
	if len(c.entries) > statsMaxEntries {
		clear(c.entries)
	}
	for _, n := range stale {
		if e := out[n]; ctx.Err() == nil {
			c.entries[n] = e
		}
	}
	c.mu.Unlock()
	return out
}

// forget drops a queue's cached figures, after an action changed them.
func (c *statsCache) forget(name string) {
	c.mu.Lock()
	delete(c.entries, name)
	c.mu.Unlock()
}

// queueNames are the queues to show: those seen in events and the
// configured ones.
func (d *Dashboard) queueNames() []string {
	names := d.store.Queues()
	for _, q := range d.cfg.Queues {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	slices.Sort(names)
	return names
}

// queues assembles every known queue's figures. Queues the broker does not
// know (deleted since an event named them) are left out, unless configured.
func (d *Dashboard) queues(ctx context.Context, now time.Time) ([]api.Queue, map[string][]api.Minute) {
	names := d.queueNames()
	stats := d.stats.get(ctx, names)
	act := d.store.Activity(names, now)
	out := make([]api.Queue, 0, len(names))
	hist := make(map[string][]api.Minute, len(names))
	for _, n := range names {
		st := stats[n]
		if errors.Is(st.err, broker.ErrQueueNotFound) && !slices.Contains(d.cfg.Queues, n) {
			continue
		}
		out = append(out, d.figures(n, st, act[n]))
		hist[n] = act[n].History
	}
	return out, hist
}

// queue assembles one queue's figures and hour. found is false when neither
// the broker nor the events know it.
func (d *Dashboard) queue(ctx context.Context, name string, now time.Time) (q api.QueueDetail, found bool) {
	st := d.stats.get(ctx, []string{name})[name]
	act := d.store.Activity([]string{name}, now)[name]
	known := slices.Contains(d.queueNames(), name)
	if errors.Is(st.err, broker.ErrQueueNotFound) && !known {
		return api.QueueDetail{}, false
	}
	return api.QueueDetail{Queue: d.figures(name, st, act), History: act.History}, true
}

func (d *Dashboard) figures(name string, st statsEntry, a history.Activity) api.Queue {
	q := api.Queue{
		Name: name, Ready: st.stats.Ready, Consumers: st.stats.Consumers, Dead: st.stats.Dead,
		InFlight: a.InFlight, Delayed: a.Delayed, Rates: a.Rates,
	}
	switch {
	case errors.Is(st.err, broker.ErrQueueNotFound):
		q.Error = "the broker has no such queue (yet)"
	case st.err != nil:
		q.Error = "broker figures unavailable: " + st.err.Error()
	}
	if st.err == nil && st.stats.Ready == 0 {
		// Nothing waits, whatever the events say (a purge, or consumers
		// without events): no age, and forgotten tasks no longer matter.
		d.store.ForgetWaiting(name)
		return q
	}
	if a.HasOldest {
		secs := a.OldestReady.Seconds()
		q.OldestReadySeconds = &secs
		q.OldestReadyAtLeast = a.AtLeast
	}
	return q
}

// workersOnline counts workers by state.
func countOnline(ws []api.Worker) int {
	n := 0
	for _, w := range ws {
		if w.State != "offline" {
			n++
		}
	}
	return n
}
