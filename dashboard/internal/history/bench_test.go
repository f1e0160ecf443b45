package history

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/warrenjobs/warren/jobs"
)

// BenchmarkReplay measures decoding and applying event batches as the
// dashboard's follower does: 100 tasks of 3 events per batch.
func BenchmarkReplay(b *testing.B) {
	var batches [][]byte
	t := time.Now()
	for i := range 100 {
		var evs []jobs.Event
		for j := range 100 {
			id := strconv.Itoa(i*100 + j)
			evs = append(evs,
				jobs.Event{Type: jobs.EventEnqueued, Time: t, TaskID: id, Kind: "email.send", Queue: "emails", Args: json.RawMessage(`{"to":"a@example.com"}`)},
				jobs.Event{Type: jobs.EventStarted, Time: t, TaskID: id, Kind: "email.send", Queue: "emails", Attempt: 1, Worker: "w1"},
				jobs.Event{Type: jobs.EventSucceeded, Time: t, TaskID: id, Kind: "email.send", Queue: "emails", Attempt: 1, Worker: "w1", Duration: time.Millisecond})
		}
		data, _ := json.Marshal(evs)
		batches = append(batches, data)
	}
	s := New(Limits{})
	b.ResetTimer()
	events := 0
	for i := range b.N {
		evs, err := jobs.DecodeEvents(batches[i%len(batches)])
		if err != nil {
			b.Fatal(err)
		}
		s.Apply(evs)
		events += len(evs)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
