package amqp

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// deliveryOf is what a consumer receives for pub (the headers as the library
// reads them back: integers as int64, strings, tables).
func deliveryOf(pub amqp.Publishing) *amqp.Delivery {
	return &amqp.Delivery{
		Headers:      pub.Headers,
		ContentType:  pub.ContentType,
		DeliveryMode: pub.DeliveryMode,
		MessageId:    pub.MessageId,
		Timestamp:    pub.Timestamp.Truncate(time.Second),
		Type:         pub.Type,
		AppId:        pub.AppId,
		Body:         pub.Body,
	}
}

func fullTestMessage() *broker.Message {
	now := time.UnixMilli(time.Now().UnixMilli())
	return &broker.Message{
		ID:         "task-1",
		Kind:       "email.send",
		Queue:      "emails",
		Args:       []byte(`{"to":"ada@example.com"}`),
		Attempt:    3,
		RetryBase:  1,
		MaxRetries: 5,
		Timeout:    90 * time.Second,
		RetryDelay: 1500 * time.Millisecond,
		EnqueuedAt: now.Add(-time.Hour),
		RunAt:      now.Add(time.Minute),
		Meta:       map[string]string{"tenant": "acme", "CC": "not a routing header", "empty": ""},
		LastError:  "boom",
		Stack:      "goroutine 1",
		FailedAt:   now.Add(-time.Minute),
		DeadReason: "max retries",
		DeadAt:     now,
	}
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]*broker.Message{
		"full": fullTestMessage(),
		"zero": {ID: "z", Kind: "k", Queue: "q", Args: []byte("null")},
	} {
		t.Run(name, func(t *testing.T) {
			if err := check(m); err != nil {
				t.Fatalf("check: %v", err)
			}
			pub := encode(m)
			got, err := decode(deliveryOf(pub), "")
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(m.Meta) == 0 {
				got.Meta = m.Meta // nil and empty are the same
			}
			if !reflect.DeepEqual(m, got) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
			}
		})
	}
}

// The wire properties and headers are exactly WIRE.md's; nothing else, and
// in particular no CC or BCC header, whatever the caller's metadata holds.
func TestEncodeUsesOnlyAllowlistedHeaders(t *testing.T) {
	t.Parallel()
	m := fullTestMessage()
	pub := encode(m)
	allowed := map[string]bool{hVersion: true, hQueue: true, hAttempt: true, hRetryBase: true, hMaxRetries: true,
		hTimeout: true, hRetryDelay: true, hEnqueuedAt: true, hRunAt: true, hMeta: true, hError: true,
		hStack: true, hFailedAt: true, hDeadReason: true, hDeadAt: true}
	for k := range pub.Headers {
		if !allowed[k] {
			t.Errorf("header %q is not in WIRE.md's list", k)
		}
	}
	if len(pub.Headers) != len(allowed) {
		t.Errorf("full message has %d headers, want all %d", len(pub.Headers), len(allowed))
	}
	if pub.ContentType != "application/json" || pub.DeliveryMode != 2 || pub.AppId != "warren" ||
		pub.MessageId != m.ID || pub.Type != m.Kind || !pub.Timestamp.Equal(m.EnqueuedAt) {
		t.Errorf("properties: %+v", pub)
	}
	if err := pub.Headers.Validate(); err != nil {
		t.Errorf("headers are not a valid AMQP table: %v", err)
	}
	// A republished message carries none of the incoming delivery's other
	// headers: decode keeps only what it reads.
	d := deliveryOf(pub)
	d.Headers["CC"] = []any{"elsewhere"}
	d.Headers["BCC"] = []any{"elsewhere"}
	got, err := decode(d, "emails")
	if err != nil {
		t.Fatal(err)
	}
	for k := range encode(got).Headers {
		if k == "CC" || k == "BCC" {
			t.Errorf("republished message carries %s", k)
		}
	}
}

func TestDecodeReadsOtherIntegerTypes(t *testing.T) {
	t.Parallel()
	d := &amqp.Delivery{MessageId: "a", Type: "k", Body: []byte(`1`), Headers: amqp.Table{
		hVersion: uint8(1), hAttempt: int32(2), hRetryBase: int16(1), hMaxRetries: int8(-1),
		hTimeout: float64(2000), hEnqueuedAt: uint32(5000),
	}}
	m, err := decode(d, "q")
	if err != nil {
		t.Fatal(err)
	}
	if m.Attempt != 2 || m.RetryBase != 1 || m.MaxRetries != -1 || m.Timeout != 2*time.Second ||
		m.EnqueuedAt.UnixMilli() != 5000 || m.Queue != "q" {
		t.Fatalf("decoded %+v", m)
	}
	// The consumed queue wins over the header.
	d.Headers[hQueue] = "elsewhere"
	if m, err := decode(d, "q"); err != nil || m.Queue != "q" {
		t.Fatalf("decoded %+v", m)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	t.Parallel()
	valid := func() *amqp.Delivery { return deliveryOf(encode(fullTestMessage())) }
	cases := map[string]func(d *amqp.Delivery){
		"no version":           func(d *amqp.Delivery) { delete(d.Headers, hVersion) },
		"version 2":            func(d *amqp.Delivery) { d.Headers[hVersion] = int64(2) },
		"version string":       func(d *amqp.Delivery) { d.Headers[hVersion] = "1" },
		"no message-id":        func(d *amqp.Delivery) { d.MessageId = "" },
		"long message-id":      func(d *amqp.Delivery) { d.MessageId = strings.Repeat("x", 129) },
		"no type":              func(d *amqp.Delivery) { d.Type = "" },
		"body not JSON":        func(d *amqp.Delivery) { d.Body = []byte("{") },
		"empty body":           func(d *amqp.Delivery) { d.Body = nil },
		"attempt string":       func(d *amqp.Delivery) { d.Headers[hAttempt] = "3" },
		"attempt negative":     func(d *amqp.Delivery) { d.Headers[hAttempt] = int64(-1) },
		"attempt huge":         func(d *amqp.Delivery) { d.Headers[hAttempt] = int64(math.MaxInt64) },
		"timeout overflows":    func(d *amqp.Delivery) { d.Headers[hTimeout] = int64(math.MaxInt64) },
		"time negative":        func(d *amqp.Delivery) { d.Headers[hRunAt] = int64(-5) },
		"time past 9999":       func(d *amqp.Delivery) { d.Headers[hDeadAt] = int64(math.MaxInt64) },
		"float not integral":   func(d *amqp.Delivery) { d.Headers[hAttempt] = 1.5 },
		"meta not a table":     func(d *amqp.Delivery) { d.Headers[hMeta] = "a=b" },
		"meta value int":       func(d *amqp.Delivery) { d.Headers[hMeta] = amqp.Table{"a": int64(1)} },
		"error not a string":   func(d *amqp.Delivery) { d.Headers[hError] = int64(1) },
		"queue with a dot":     func(d *amqp.Delivery) { d.Headers[hQueue] = "a.b" },
		"max retries below -1": func(d *amqp.Delivery) { d.Headers[hMaxRetries] = int64(-2) },
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			d := valid()
			spoil(d)
			m, err := decode(d, "fallback")
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode: got %v, want ErrMalformed", err)
			}
			if m == nil || m.ID != d.MessageId || m.Kind != d.Type || string(m.Args) != string(d.Body) {
				t.Fatalf("malformed message should hold what could be read: %+v", m)
			}
			if m.Queue != "fallback" {
				t.Fatalf("malformed message has queue %q, want the consumed one", m.Queue)
			}
		})
	}
}

func TestBrokerDeath(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	reason, got, ok := brokerDeath(amqp.Table{"x-death": []any{amqp.Table{"reason": "delivery_limit", "time": at}}})
	if !ok || reason != "delivery_limit" || !got.Equal(at) {
		t.Fatalf("brokerDeath: %q %v %v", reason, got, ok)
	}
	for _, h := range []amqp.Table{nil, {"x-death": "x"}, {"x-death": []any{}}, {"x-death": []any{"x"}}} {
		if _, _, ok := brokerDeath(h); ok {
			t.Errorf("brokerDeath(%v) ok", h)
		}
	}
}

// fuzzKeys are the header names fuzzHeaders picks from: every header warren
// reads, and some it must ignore.
var fuzzKeys = []string{hVersion, hQueue, hAttempt, hRetryBase, hMaxRetries, hTimeout, hRetryDelay,
	hEnqueuedAt, hRunAt, hMeta, hError, hStack, hFailedAt, hDeadReason, hDeadAt,
	"x-death", "x-stream-offset", hAppendedAt, "CC", "BCC", "x-unknown"}

// fuzzHeaders turns bytes into a header table: pairs of (key, type) bytes
// followed by the value's bytes, with values of every type the library can
// read from the wire, and some it cannot.
func fuzzHeaders(data []byte) amqp.Table {
	h := amqp.Table{}
	take := func(n int) []byte {
		n = min(n, len(data))
		b := data[:n]
		data = data[n:]
		return b
	}
	u64 := func() uint64 {
		var b [8]byte
		copy(b[:], take(8))
		return binary.LittleEndian.Uint64(b[:])
	}
	str := func() string {
		n := 0
		if b := take(1); len(b) == 1 {
			n = int(b[0])
		}
		return string(take(n))
	}
	for depth := 0; len(data) >= 2 && depth < 64; depth++ {
		kt := take(2)
		key := fuzzKeys[int(kt[0])%len(fuzzKeys)]
		var v any
		switch kt[1] % 16 {
		case 0:
			v = int64(u64())
		case 1:
			v = int32(u64())
		case 2:
			v = int8(u64())
		case 3:
			v = uint8(u64())
		case 4:
			v = math.Float64frombits(u64())
		case 5:
			v = str()
		case 6:
			v = []byte(str())
		case 7:
			v = u64()&1 == 1
		case 8:
			v = time.Unix(int64(u64()>>1), 0)
		case 9:
			v = nil
		case 10:
			v = amqp.Table{str(): str(), str(): int64(u64())}
		case 11:
			v = []any{amqp.Table{"reason": str(), "time": time.Unix(int64(u64()>>34), 0)}, str()}
		case 12:
			v = amqp.Decimal{Scale: uint8(u64()), Value: int32(u64())}
		case 13:
			v = int64(1)
		case 14:
			v = uint16(u64())
		case 15:
			v = float32(math.Float64frombits(u64()))
		}
		h[key] = v
	}
	return h
}

// FuzzDecode: any delivery decodes to a valid message or a DecodeErr, never
// a panic; a valid one survives encode and decode unchanged.
func FuzzDecode(f *testing.F) {
	valid := encode(fullTestMessage())
	f.Add(valid.Body, valid.MessageId, valid.Type, []byte{0, 13})
	f.Add([]byte(`null`), "id", "kind", []byte{0, 13, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 5, 3, 'a', 'b', 'c'})
	f.Add([]byte(`{`), "", "", []byte{})
	f.Add([]byte(`"x"`), strings.Repeat("i", 200), "k", []byte{0, 0, 255, 255, 255, 255, 255, 255, 255, 127})
	f.Add([]byte(`[]`), "id", "k", []byte{0, 13, 9, 10, 3, 'k', 'e', 'y', 1, 'v', 15, 11, 4, 'r', 'e', 'a', 's', 0})
	f.Add([]byte(`1`), "id", "k", []byte{0, 13, 7, 4, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f})
	f.Add([]byte("\xff\xfe"), "\xff", "\xfe", []byte{18, 5, 2, 'c', 'c', 19, 6, 1, 'x'})
	f.Fuzz(func(t *testing.T, body []byte, id, kind string, hdr []byte) {
		d := &amqp.Delivery{MessageId: id, Type: kind, Body: body, Headers: fuzzHeaders(hdr)}
		m, err := decode(d, "fallback")
		if m == nil {
			t.Fatal("decode returned no message")
		}
		_, _, _ = brokerDeath(d.Headers)
		_, _ = eventBatch(d)
		dl := encodeMalformed(d, "q", m)
		if err := dl.Headers.Validate(); err != nil {
			t.Fatalf("dead letter of a malformed delivery has invalid headers: %v", err)
		}
		for k := range dl.Headers {
			if !strings.HasPrefix(k, "x-warren-") {
				t.Fatalf("dead letter of a malformed delivery carries header %q", k)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if m.ID != id || m.Kind != kind || string(m.Args) != string(body) {
				t.Fatalf("malformed message lost what could be read: %+v", m)
			}
			return
		}
		if err := check(m); err != nil {
			t.Fatalf("decode accepted a message check rejects: %v", err)
		}
		again, err := decode(deliveryOf(encode(m)), "fallback")
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(m.Meta) == 0 {
			again.Meta = m.Meta
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, m)
		}
	})
}
