package jobs

import (
	"sync"
	"time"
)

// heartbeat emits the runner's status every HeartbeatInterval, and once more
// when it stops.
type heartbeat struct {
	r    *Runner
	stop chan struct{}
	done sync.WaitGroup
}

func newHeartbeat(r *Runner) *heartbeat {
	return &heartbeat{r: r, stop: make(chan struct{})}
}

// Start begins beating.
func (h *heartbeat) Start() {
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(h.r.cfg.HeartbeatInterval)
		defer t.Stop()
		h.beat()
		for {
			select {
			case <-t.C:
				h.beat()
			case <-h.stop:
				h.beat()
				return
			}
		}
	}()
}

// Stop sends a last beat and ends.
func (h *heartbeat) Stop() {
	close(h.stop)
	h.done.Wait()
}

func (h *heartbeat) beat() {
	s := h.r.Stats()
	h.r.events.emit(Event{Type: EventHeartbeat, Time: time.Now(), Worker: s.ID, Status: &s})
}
