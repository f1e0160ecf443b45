package faults_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs/internal/faults"
)

// The checker finds each kind of anomaly, and only those.
func TestCheck(t *testing.T) {
	t.Parallel()
	h := faults.NewHistory()
	h.Add([]faults.Entry{
		{Op: faults.OpEnqueued, ID: "ok"},
		{Op: faults.OpEnqueued, ID: "twice"},
		{Op: faults.OpEnqueued, ID: "dead"},
		{Op: faults.OpEnqueued, ID: "lost"},
		{Op: faults.OpEnqueueError, ID: "errored-ran"},
		{Op: faults.OpEnqueueError, ID: "errored-gone"},
		{Op: faults.OpEnqueueError, ID: "retried"}, // failed once, then confirmed
		{Op: faults.OpEnqueued, ID: "retried"},
		{Op: faults.OpDone, ID: "ok", Attempt: 1},
		{Op: faults.OpDone, ID: "twice", Attempt: 1},
		{Op: faults.OpDone, ID: "twice", Attempt: 1},
		{Op: faults.OpFail, ID: "dead", Attempt: 1},
		{Op: faults.OpDone, ID: "errored-ran", Attempt: 1},
		{Op: faults.OpDone, ID: "retried", Attempt: 1},
		{Op: faults.OpDone, ID: "stranger", Attempt: 1},
	})
	h.AddDead([]*broker.Message{{ID: "dead"}, {ID: "ghost"}})
	r := faults.Check(h)
	want := faults.Result{
		Confirmed: 5, Errored: 2, Executed: 5, Executions: 6, DeadLettered: 2,
		Lost: []string{"lost"}, Duplicated: 1, DuplicatedTasks: []string{"twice"},
		Unexpected: []string{"ghost", "stranger"},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("Check:\n got %+v\nwant %+v", r, want)
	}
	if h.Attempts["dead"] != 1 || h.Attempts["twice"] != 2 {
		t.Fatalf("attempts: %v", h.Attempts)
	}
}

// Record files survive their writer's death: whole lines are read, a torn
// last line is skipped, anything else unparsable is an error.
func TestReadHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec, err := faults.OpenRecorder(filepath.Join(dir, "a"+faults.RecordExt))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := rec.Record(faults.OpDone, fmt.Sprintf("t-%d", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Record(faults.OpDone, "has space", 1); err == nil {
		t.Fatal("recorded an ID with a space")
	}
	rec.Close()
	// A writer killed mid-line.
	if err := os.WriteFile(filepath.Join(dir, "b"+faults.RecordExt), []byte("enq-ok t-0 0 7\nenq-ok t-"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ignored.log"), []byte("not a record\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	es, err := faults.ReadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 || es[0].ID != "t-0" || es[0].PID != os.Getpid() || es[3] != (faults.Entry{Op: faults.OpEnqueued, ID: "t-0", PID: 7}) {
		t.Fatalf("entries: %+v", es)
	}
	if err := os.WriteFile(filepath.Join(dir, "c"+faults.RecordExt), []byte("garbage\nenq-ok t-1 0 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := faults.ReadHistory(dir); err == nil {
		t.Fatal("a garbled line in the middle of a file was accepted")
	}
}

// FailedIDs trusts the PublishErrors an enqueue error names, and treats an
// error naming none as a failure of every task.
func TestFailedIDs(t *testing.T) {
	t.Parallel()
	ids := []string{"a", "b", "c"}
	joined := fmt.Errorf("jobs: enqueue: %w", errors.Join(
		&broker.PublishError{ID: "b", Err: errors.New("nacked")},
		&broker.PublishError{ID: "c", Err: errors.New("lost")}))
	if got := faults.FailedIDs(joined, ids); !reflect.DeepEqual(got, map[string]bool{"b": true, "c": true}) {
		t.Fatalf("joined: %v", got)
	}
	if got := faults.FailedIDs(errors.New("context deadline exceeded"), ids); len(got) != 3 {
		t.Fatalf("opaque: %v", got)
	}
	if got := faults.FailedIDs(nil, ids); len(got) != 0 {
		t.Fatalf("nil: %v", got)
	}
}

func TestWriteReport(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	rows := []faults.Row{
		{Scenario: "10. later", Faults: "x", Enqueued: 1},
		{Scenario: "2. second", Faults: "a | b", Enqueued: 5, Lost: 1, Took: 1500 * time.Millisecond},
	}
	if err := faults.WriteReport(&buf, faults.ReportHeader{Generated: time.Unix(0, 0)}, rows); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `| 2. second | a \| b | 5 | 1 | 0 | 0 | 2s |`) {
		t.Fatalf("row not rendered:\n%s", out)
	}
	if strings.Index(out, "2. second") > strings.Index(out, "10. later") {
		t.Fatalf("rows not in scenario order:\n%s", out)
	}
}
