package history

import (
	"time"

	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/jobs"
)

// queue is what events say about one queue: per-minute counters for the last
// Window, in a ring indexed by Unix minute.
type queue struct {
	name          string
	lastSeen      time.Time
	minutes       [windowMinutes]bucket
	forgotWaiting bool // a waiting task of this queue was evicted
}

type bucket struct {
	minute                            int64 // Unix minute this bucket holds
	enqueued, succeeded, failed, dead int
}

func (q *queue) count(e *jobs.Event) {
	m := e.Time.Unix() / 60
	b := &q.minutes[mod(m, windowMinutes)]
	if b.minute != m {
		if m < b.minute {
			return // older than the window the ring holds
		}
		*b = bucket{minute: m}
	}
	switch e.Type {
	case jobs.EventEnqueued:
		b.enqueued++
	case jobs.EventSucceeded:
		b.succeeded++
	case jobs.EventRetrying:
		b.failed++
	case jobs.EventDead:
		b.failed++
		b.dead++
	}
}

func mod(a, n int64) int64 { return ((a % n) + n) % n }

// history returns the last Window's minutes up to now, oldest first.
func (q *queue) history(now time.Time, into []api.Minute) []api.Minute {
	last := now.Unix() / 60
	if into == nil {
		into = make([]api.Minute, windowMinutes)
		for i := range into {
			into[i].Time = time.Unix((last-windowMinutes+1+int64(i))*60, 0).UTC()
		}
	}
	if q == nil {
		return into
	}
	for i := range into {
		m := last - windowMinutes + 1 + int64(i)
		b := q.minutes[mod(m, windowMinutes)]
		if b.minute != m {
			continue
		}
		into[i].Enqueued += b.enqueued
		into[i].Succeeded += b.succeeded
		into[i].Failed += b.failed
		into[i].Dead += b.dead
	}
	return into
}

// rateMinutes is the span rates are averaged over.
const rateMinutes = 5

// rates averages the last rateMinutes of history, the current partial minute
// counted by the fraction elapsed.
func rates(h []api.Minute, now time.Time) api.Rates {
	if len(h) < rateMinutes {
		return api.Rates{}
	}
	var enq, ok, fail int
	for _, m := range h[len(h)-rateMinutes:] {
		enq += m.Enqueued
		ok += m.Succeeded
		fail += m.Failed
	}
	span := float64(rateMinutes-1) + float64(now.Unix()%60)/60
	if span <= 0 {
		span = 1
	}
	return api.Rates{
		EnqueuedPerMinute:  round2(float64(enq) / span),
		SucceededPerMinute: round2(float64(ok) / span),
		FailedPerMinute:    round2(float64(fail) / span),
	}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
