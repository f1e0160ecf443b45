package amqp

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// This file is the only place that knows how a broker.Message is carried by
// AMQP 0-9-1 (WIRE.md, "Message").

// ErrMalformed is wrapped by every DecodeErr: the delivery is not a valid warren
// message of a known wire version.
var ErrMalformed = errors.New("malformed warren message")

const (
	wireVersion = 1
	contentType = "application/json"
	appID       = "warren"
	maxIDLen    = 128

	hVersion    = "x-warren-version"
	hQueue      = "x-warren-queue"
	hAttempt    = "x-warren-attempt"
	hRetryBase  = "x-warren-retry-base"
	hMaxRetries = "x-warren-max-retries"
	hTimeout    = "x-warren-timeout-ms"
	hRetryDelay = "x-warren-retry-delay-ms"
	hEnqueuedAt = "x-warren-enqueued-at"
	hRunAt      = "x-warren-run-at"
	hMeta       = "x-warren-meta"
	hError      = "x-warren-error"
	hStack      = "x-warren-stack"
	hFailedAt   = "x-warren-failed-at"
	hDeadReason = "x-warren-dead-reason"
	hDeadAt     = "x-warren-dead-at"
)

// Bounds a valid message keeps to. Times are Unix milliseconds between the
// epoch and the end of year 9999; durations fit time.Duration.
const (
	maxCount  = math.MaxInt32
	maxMillis = 253402300799999
	maxDurMS  = math.MaxInt64 / int64(time.Millisecond)
)

// encode returns the AMQP publishing carrying m. m must have passed check.
// Headers come from the allowlist above only; nothing of m is copied into a
// routing header.
func encode(m *broker.Message) amqp.Publishing {
	// Headers at their default are left out (WIRE.md: a missing header
	// takes its default): every header costs encoding on both sides and
	// broker work, and a fresh task needs only three.
	h := amqp.Table{
		hVersion: int64(wireVersion),
		hQueue:   m.Queue,
	}
	putInt(h, hAttempt, int64(m.Attempt), 0)
	putInt(h, hRetryBase, int64(m.RetryBase), 0)
	putInt(h, hMaxRetries, int64(m.MaxRetries), -1)
	putInt(h, hTimeout, m.Timeout.Milliseconds(), 0)
	putInt(h, hRetryDelay, m.RetryDelay.Milliseconds(), 0)
	putTime(h, hEnqueuedAt, m.EnqueuedAt)
	putTime(h, hRunAt, m.RunAt)
	putTime(h, hFailedAt, m.FailedAt)
	putTime(h, hDeadAt, m.DeadAt)
	putString(h, hError, m.LastError)
	putString(h, hStack, m.Stack)
	putString(h, hDeadReason, m.DeadReason)
	if len(m.Meta) > 0 {
		meta := make(amqp.Table, len(m.Meta))
		for k, v := range m.Meta {
			meta[k] = v
		}
		h[hMeta] = meta
	}
	return amqp.Publishing{
		Headers:      h,
		ContentType:  contentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    m.ID,
		Type:         m.Kind,
		Timestamp:    m.EnqueuedAt,
		AppId:        appID,
		Body:         m.Args,
	}
}

func putInt(h amqp.Table, key string, v, def int64) {
	if v != def {
		h[key] = v
	}
}

func putTime(h amqp.Table, key string, t time.Time) {
	if !t.IsZero() {
		h[key] = t.UnixMilli()
	}
}

func putString(h amqp.Table, key, s string) {
	if s != "" {
		h[key] = s
	}
}

// check reports why m cannot travel as a valid warren message, or nil. Publish
// and decode apply the same rules, so nothing Publish accepts is later
// dead-lettered as malformed.
func check(m *broker.Message) error {
	switch {
	case m.ID == "" || len(m.ID) > maxIDLen || !utf8.ValidString(m.ID):
		return fmt.Errorf("%w: task ID must be 1-%d bytes of UTF-8", ErrMalformed, maxIDLen)
	case m.Kind == "" || len(m.Kind) > 255 || !utf8.ValidString(m.Kind):
		return fmt.Errorf("%w: kind must be 1-255 bytes of UTF-8", ErrMalformed)
	case !json.Valid(m.Args):
		return fmt.Errorf("%w: args are not valid JSON", ErrMalformed)
	case m.Attempt < 0 || m.Attempt > maxCount:
		return fmt.Errorf("%w: attempt %d out of range", ErrMalformed, m.Attempt)
	case m.RetryBase < 0 || m.RetryBase > maxCount:
		return fmt.Errorf("%w: retry base %d out of range", ErrMalformed, m.RetryBase)
	case m.MaxRetries < -1 || m.MaxRetries > maxCount:
		return fmt.Errorf("%w: max retries %d out of range", ErrMalformed, m.MaxRetries)
	case m.Timeout < 0:
		return fmt.Errorf("%w: negative timeout", ErrMalformed)
	case m.RetryDelay < 0:
		return fmt.Errorf("%w: negative retry delay", ErrMalformed)
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"enqueued-at", m.EnqueuedAt}, {"run-at", m.RunAt}, {"failed-at", m.FailedAt}, {"dead-at", m.DeadAt}} {
		if !t.t.IsZero() && (t.t.UnixMilli() < 0 || t.t.UnixMilli() > maxMillis) {
			return fmt.Errorf("%w: %s %v out of range", ErrMalformed, t.name, t.t)
		}
	}
	return nil
}

// decode reads a delivery consumed from queue (a logical name). The queue a
// message was consumed from is its Queue, whatever its x-warren-queue header
// says: a header never decides where warren routes a task (retries and dead
// letters go back to Queue). Only with queue "" does the header count. It
// always returns a message holding whatever could be read; the error,
// wrapping ErrMalformed, says why the delivery is not a valid warren message.
func decode(d *amqp.Delivery, queue string) (*broker.Message, error) {
	m := &broker.Message{
		ID:         d.MessageId,
		Kind:       d.Type,
		Queue:      queue,
		Args:       d.Body, // amqp091-go allocates every delivery's body afresh
		MaxRetries: -1,
	}
	r := headerReader{h: d.Headers}
	if q, ok := r.str(hQueue); ok {
		switch {
		case broker.ValidateQueueName(q) != nil:
			r.fail(hQueue, "invalid queue name %q", q)
		case queue == "":
			m.Queue = q
		}
	}
	// Every field is read, even from a message of no or another version, so
	// that a malformed message shows as much as possible (a dead letter's
	// reason, for one).
	v, hasVersion := r.int(hVersion, math.MinInt64, math.MaxInt64)
	versionErr := r.err
	if n, ok := r.int(hAttempt, 0, maxCount); ok {
		m.Attempt = int(n)
	}
	if n, ok := r.int(hRetryBase, 0, maxCount); ok {
		m.RetryBase = int(n)
	}
	if n, ok := r.int(hMaxRetries, -1, maxCount); ok {
		m.MaxRetries = int(n)
	}
	if n, ok := r.int(hTimeout, 0, maxDurMS); ok {
		m.Timeout = time.Duration(n) * time.Millisecond
	}
	if n, ok := r.int(hRetryDelay, 0, maxDurMS); ok {
		m.RetryDelay = time.Duration(n) * time.Millisecond
	}
	m.EnqueuedAt = r.time(hEnqueuedAt)
	m.RunAt = r.time(hRunAt)
	m.FailedAt = r.time(hFailedAt)
	m.DeadAt = r.time(hDeadAt)
	m.LastError, _ = r.str(hError)
	m.Stack, _ = r.str(hStack)
	m.DeadReason, _ = r.str(hDeadReason)
	m.Meta = r.meta(hMeta)
	switch {
	case versionErr != nil:
		return m, fmt.Errorf("%w: %v", ErrMalformed, versionErr)
	case !hasVersion:
		return m, fmt.Errorf("%w: no %s header", ErrMalformed, hVersion)
	case v != wireVersion:
		return m, fmt.Errorf("%w: unknown wire version %d", ErrMalformed, v)
	case r.err != nil:
		return m, fmt.Errorf("%w: %v", ErrMalformed, r.err)
	}
	if err := check(m); err != nil {
		return m, err
	}
	return m, nil
}

// wireHeaders lists every header of WIRE.md.
var wireHeaders = []string{hVersion, hQueue, hAttempt, hRetryBase, hMaxRetries, hTimeout, hRetryDelay,
	hEnqueuedAt, hRunAt, hMeta, hError, hStack, hFailedAt, hDeadReason, hDeadAt}

// encodeMalformed returns the dead letter of a malformed delivery d: its body
// and properties as they came, its WIRE.md headers as they came (whatever
// their types; no other header), queue, and the failure fields of dead.
// Whatever made it malformed stays (unless it was only in those fields), so
// RetryDead leaves it alone.
func encodeMalformed(d *amqp.Delivery, queue string, dead *broker.Message) amqp.Publishing {
	h := amqp.Table{}
	for _, k := range wireHeaders {
		if v, ok := d.Headers[k]; ok {
			h[k] = v
		}
	}
	h[hQueue] = queue
	putString(h, hError, dead.LastError)
	putString(h, hStack, dead.Stack)
	putString(h, hDeadReason, dead.DeadReason)
	putTime(h, hFailedAt, dead.FailedAt)
	putTime(h, hDeadAt, dead.DeadAt)
	return amqp.Publishing{
		Headers:      h,
		ContentType:  d.ContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    d.MessageId,
		Type:         d.Type,
		Timestamp:    d.Timestamp,
		AppId:        d.AppId,
		Body:         append([]byte(nil), d.Body...),
	}
}

// headerReader reads typed headers, keeping the first type or range error.
// A missing header reads as absent, never as an error.
type headerReader struct {
	h   amqp.Table
	err error
}

func (r *headerReader) fail(key, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("header %s: "+format, append([]any{key}, args...)...)
	}
}

// int reads an integer header of any AMQP integer type (or an integral
// double, as some clients send numbers) within [lo, hi].
func (r *headerReader) int(key string, lo, hi int64) (int64, bool) {
	v, ok := r.h[key]
	if !ok {
		return 0, false
	}
	n, isInt := toInt64(v)
	if !isInt {
		r.fail(key, "want an integer, got %T", v)
		return 0, false
	}
	if n < lo || n > hi {
		r.fail(key, "%d out of range [%d, %d]", n, lo, hi)
		return 0, false
	}
	return n, true
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case uint8:
		return int64(n), true
	case int16:
		return int64(n), true
	case uint16:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		if n == math.Trunc(n) && n >= -(1<<53) && n <= 1<<53 {
			return int64(n), true
		}
	case float32:
		f := float64(n)
		if f == math.Trunc(f) && f >= -(1<<24) && f <= 1<<24 {
			return int64(f), true
		}
	}
	return 0, false
}

// time reads a Unix-millisecond header; absent is the zero time.
func (r *headerReader) time(key string) time.Time {
	n, ok := r.int(key, 0, maxMillis)
	if !ok {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func (r *headerReader) str(key string) (string, bool) {
	v, ok := r.h[key]
	if !ok {
		return "", false
	}
	switch s := v.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	r.fail(key, "want a string, got %T", v)
	return "", false
}

func (r *headerReader) meta(key string) map[string]string {
	v, ok := r.h[key]
	if !ok {
		return nil
	}
	t, ok := v.(amqp.Table)
	if !ok {
		r.fail(key, "want a table, got %T", v)
		return nil
	}
	meta := make(map[string]string, len(t))
	for k, v := range t {
		s, ok := v.(string)
		if !ok {
			r.fail(key, "entry %q: want a string, got %T", k, v)
			return nil
		}
		meta[k] = s
	}
	return meta
}

// brokerDeath describes a message RabbitMQ dead-lettered by itself (for example
// past the work queue's x-delivery-limit), from the newest x-death entry. ok is
// false when the headers hold no readable x-death entry.
func brokerDeath(h amqp.Table) (reason string, at time.Time, ok bool) {
	deaths, _ := h["x-death"].([]any)
	if len(deaths) == 0 {
		return "", time.Time{}, false
	}
	entry, _ := deaths[0].(amqp.Table)
	if entry == nil {
		return "", time.Time{}, false
	}
	reason, _ = entry["reason"].(string)
	if reason == "" {
		reason = "unknown"
	}
	at, _ = entry["time"].(time.Time)
	return reason, at, true
}
