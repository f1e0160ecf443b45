package jobs

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// appendCounter is a broker that only counts what AppendEvents receives.
type appendCounter struct {
	broker.Broker
	batches, bytes atomic.Int64
}

func (a *appendCounter) AppendEvents(_ context.Context, batch []byte) error {
	a.batches.Add(1)
	a.bytes.Add(int64(len(batch)))
	return nil
}

// BenchmarkEventBatching measures the event batcher: emitting a task's
// lifecycle events and encoding them into batches for the events log.
func BenchmarkEventBatching(b *testing.B) {
	sink := &appendCounter{}
	l := newEventLog(sink, 100*time.Millisecond, nil, nil)
	l.Start()
	now := time.Now()
	args := []byte(`{"to":"someone@example.com","pad":"` + strings.Repeat("x", 200-40) + `"}`)
	events := []Event{
		{Type: EventEnqueued, Time: now, TaskID: "0b7e8b1e-5d0f-4a51-9e1c-3f1d2a6b7c8d", Kind: "email.send", Queue: "emails", Args: args},
		{Type: EventStarted, Time: now, TaskID: "0b7e8b1e-5d0f-4a51-9e1c-3f1d2a6b7c8d", Kind: "email.send", Queue: "emails", Attempt: 1, Worker: "host-1234-abcdef12"},
		{Type: EventSucceeded, Time: now, TaskID: "0b7e8b1e-5d0f-4a51-9e1c-3f1d2a6b7c8d", Kind: "email.send", Queue: "emails", Attempt: 1, Duration: 1500 * time.Microsecond, Worker: "host-1234-abcdef12"},
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		e := events[i%len(events)]
		// Pace the emitter to the batcher, as a real worker's tasks do: the
		// benchmark measures encoding, not drops.
		for l.pending() > eventBuffer/2 {
			time.Sleep(10 * time.Microsecond)
		}
		l.emit(e)
	}
	l.Stop(context.Background())
	if d := l.dropped.Load(); d > 0 {
		b.Fatalf("%d events dropped", d)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(sink.bytes.Load())/float64(b.N), "B/event")
}

// BenchmarkEncodeEvents measures encoding one full batch (eventMaxBatch
// events), per event, by the batcher's encoder and by encoding/json.
func BenchmarkEncodeEvents(b *testing.B) {
	now := time.Now()
	batch := make([]Event, eventMaxBatch)
	for i := range batch {
		batch[i] = Event{Type: EventSucceeded, Time: now, TaskID: "0b7e8b1e-5d0f-4a51-9e1c-3f1d2a6b7c8d", Kind: "email.send",
			Queue: "emails", Attempt: 1, Duration: 1500 * time.Microsecond, Worker: "host-1234-abcdef12"}
	}
	for _, enc := range []struct {
		name string
		f    func([]Event) ([]byte, error)
	}{{"batcher", encodeEvents}, {"encoding-json", func(e []Event) ([]byte, error) { return json.Marshal(e) }}} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.f(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
		})
	}
}
