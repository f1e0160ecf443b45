package jobs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// encodeEvents encodes a batch of events for the events log: the same JSON
// encoding/json writes for []Event, written by hand because the batcher
// encodes two events per task and reflection made that a visible share of a
// worker's CPU. An event whose args are not valid JSON is written without
// them (encoding/json would fail the whole batch).
func encodeEvents(batch []Event) ([]byte, error) {
	b := make([]byte, 0, 256*len(batch)+2)
	b = append(b, '[')
	for i := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendEvent(b, &batch[i]); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

func appendEvent(b []byte, e *Event) ([]byte, error) {
	b = append(b, `{"type":`...)
	b = appendString(b, string(e.Type))
	b = append(b, `,"time":`...)
	b = appendTime(b, e.Time)
	if e.TaskID != "" {
		b = append(b, `,"task_id":`...)
		b = appendString(b, e.TaskID)
	}
	if e.Kind != "" {
		b = append(b, `,"kind":`...)
		b = appendString(b, e.Kind)
	}
	if e.Queue != "" {
		b = append(b, `,"queue":`...)
		b = appendString(b, e.Queue)
	}
	if e.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(e.Attempt), 10)
	}
	if len(e.Args) > 0 {
		// encoding/json writes a RawMessage compacted.
		var buf bytes.Buffer
		if json.Compact(&buf, e.Args) == nil {
			b = append(b, `,"args":`...)
			b = append(b, buf.Bytes()...)
		}
	}
	if !e.RunAt.IsZero() {
		b = append(b, `,"run_at":`...)
		b = appendTime(b, e.RunAt)
	}
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
	}
	if e.Stack != "" {
		b = append(b, `,"stack":`...)
		b = appendString(b, e.Stack)
	}
	if e.Duration != 0 {
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, int64(e.Duration), 10)
	}
	if e.Worker != "" {
		b = append(b, `,"worker":`...)
		b = appendString(b, e.Worker)
	}
	if e.Status != nil {
		s, err := json.Marshal(e.Status)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"status":`...)
		b = append(b, s...)
	}
	return append(b, '}'), nil
}

// appendTime writes t as time.Time's MarshalJSON does.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString writes s as a JSON string, byte for byte as encoding/json
// does: plain ASCII directly, anything that needs escaping through
// encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
