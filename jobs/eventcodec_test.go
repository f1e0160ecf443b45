package jobs

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestEncodeEventsMatchesEncodingJSON: the hand-written batch encoder writes
// exactly what encoding/json writes, so readers see the same events.
func TestEncodeEventsMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 12, 4, 20, 1, 2, 345678900, time.FixedZone("x", 3600))
	events := []Event{
		{Type: EventEnqueued, Time: now},
		{Type: EventEnqueued, Time: now.UTC(), TaskID: "0b7e8b1e-5d0f", Kind: "email.send", Queue: "emails",
			Args: json.RawMessage(`{"to": "a@b.c",  "n": [1, 2]}`), RunAt: now.Add(time.Hour)},
		{Type: EventStarted, Time: now, TaskID: "t", Kind: "k", Queue: "q", Attempt: 3, Worker: "host-1-abc"},
		{Type: EventSucceeded, Time: now, TaskID: "t", Attempt: 1, Duration: 1500 * time.Microsecond, Worker: "w"},
		{Type: EventRetrying, Time: now, Error: `boom: "quoted" <html> & tab\t nl\n ünïcödé \u2028 \x00 \xff`, RunAt: now},
		{Type: EventDead, Time: now, Error: "x", Reason: "max retries exceeded (1)", Stack: "goroutine 1 [running]:\nmain.main()\n\t/x.go:1 +0x1d"},
		{Type: EventHeartbeat, Time: now, Worker: "w", Status: &WorkerStatus{ID: "w", Host: "h", PID: 1,
			Queues: map[string]int{"a": 1, "b": 2}, Concurrency: 10, Active: 2, Processed: 5, StartedAt: now, Stopping: true}},
		{Type: EventType("custom <type>"), Time: time.Time{}, Attempt: -1, Duration: -5},
	}
	want, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeEvents(events)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("encodeEvents differs from encoding/json:\n got %s\nwant %s", got, want)
	}
	if _, err := DecodeEvents(got); err != nil {
		t.Fatal(err)
	}
}

// TestEncodeEventsKnowsEveryField fails when Event grows a field that
// appendEvent does not write yet.
func TestEncodeEventsKnowsEveryField(t *testing.T) {
	const written = 14 // the fields appendEvent writes
	if n := reflect.TypeOf(Event{}).NumField(); n != written {
		t.Fatalf("Event has %d fields, appendEvent writes %d: teach appendEvent the new one, add it to TestEncodeEventsMatchesEncodingJSON, then update this count", n, written)
	}
}

// TestEncodeEventsRandomStrings compares the two encoders on random strings,
// ASCII and not.
func TestEncodeEventsRandomStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "<", ">", "&", "\n", "\x01", "\x7f", "é", "\u2028", "\xff", "😀"}
	for range 2000 {
		var sb strings.Builder
		for range r.IntN(12) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		ev := []Event{{Type: EventRetrying, Time: time.Unix(r.Int64N(1<<33), r.Int64N(1e9)), TaskID: sb.String(), Error: sb.String()}}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeEvents(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("for %q:\n got %s\nwant %s", sb.String(), got, want)
		}
	}
}

// TestEncodeEventsInvalidArgs: an event whose args are not JSON loses its
// args, not its batch.
func TestEncodeEventsInvalidArgs(t *testing.T) {
	events := []Event{{Type: EventEnqueued, TaskID: "a", Args: json.RawMessage(`{not json`)}, {Type: EventStarted, TaskID: "b"}}
	if _, err := json.Marshal(events); err == nil {
		t.Fatal("encoding/json accepted invalid args; the test means nothing")
	}
	got, err := encodeEvents(events)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeEvents(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0].TaskID != "a" || back[0].Args != nil || back[1].TaskID != "b" {
		t.Fatalf("decoded %+v", back)
	}
}
