package jobs

import (
	"math"
	"math/rand/v2"
	"time"
)

// RetryPolicy decides how long a failed task waits before its next attempt.
// attempt is the 1-based number of the attempt that just failed.
type RetryPolicy interface {
	NextRetry(attempt int) time.Duration
}

// ExponentialBackoff waits Base × Factor^(attempt-1), capped at Max, with up to
// ±Jitter of random spread. The zero value is not useful; DefaultBackoff is
// the default policy.
type ExponentialBackoff struct {
	Base   time.Duration
	Factor float64
	Max    time.Duration
	Jitter float64 // fraction, 0..1
}

// DefaultBackoff retries after about 1 min, 5 min, 25 min, 2 h, 10 h, ...
// capped at 24 h, each ±10%: the schedule of webhook providers. With the
// default of 4 retries a task is dead-lettered after about 2.5 hours.
var DefaultBackoff = ExponentialBackoff{Base: time.Minute, Factor: 5, Max: 24 * time.Hour, Jitter: 0.1}

// NextRetry implements RetryPolicy.
func (b ExponentialBackoff) NextRetry(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(b.Base) * math.Pow(b.Factor, float64(attempt-1))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(b.Max)
	}
	if b.Jitter > 0 {
		d *= 1 + b.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// FixedDelay waits the same time before every retry.
type FixedDelay time.Duration

// NextRetry implements RetryPolicy.
func (f FixedDelay) NextRetry(int) time.Duration { return time.Duration(f) }
