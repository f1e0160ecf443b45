package bench

import (
	"context"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method, or 0 for no samples. ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rate is n events over d, per second.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// loadAvg reads the 1-minute load average, 0 where /proc is missing.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// rssMB reads a process's resident set size (VmRSS) in MB, from /proc.
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) > 0 {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err != nil {
					return 0, err
				}
				return kb / 1024, nil
			}
		}
	}
	return 0, os.ErrNotExist
}

// loadSampler samples the load average every 5 s until stopped.
type loadSampler struct {
	once    sync.Once
	done    chan struct{}
	exited  chan struct{}
	sum     float64
	n       int
	highest float64
}

func sampleLoad(ctx context.Context) *loadSampler {
	l := &loadSampler{done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(l.exited)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			v := loadAvg()
			l.sum, l.n, l.highest = l.sum+v, l.n+1, max(l.highest, v)
			select {
			case <-t.C:
			case <-l.done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return l
}

// stop ends the sampling and returns the mean and the highest sample.
func (l *loadSampler) stop() (mean, highest float64) {
	l.once.Do(func() { close(l.done) })
	<-l.exited
	if l.n == 0 {
		return 0, 0
	}
	return math.Round(l.sum/float64(l.n)*100) / 100, l.highest
}
