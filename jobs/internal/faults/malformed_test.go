package faults_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs/internal/faults"
)

// rawCase is one message published straight to the work queue by a raw
// amqp091-go client, the way a buggy or hostile producer could.
type rawCase struct {
	name    string
	pub     amqp091.Publishing
	outcome string // "done", or a substring of the dead letter's reason
	attempt int    // the dead letter's Attempt, when dead-lettered
	ccs     int    // copies RabbitMQ itself routes to the victim queue (CC/BCC) on the raw publish
}

// Scenario 6: messages no warren producer would send — not JSON, unknown
// kind, wrong types, a huge body, hostile headers — are each dead-lettered
// with a reason, and nothing crashes. Hostile headers (CC/BCC routing keys,
// a queue header naming another queue) never make warren route a copy
// anywhere else. The decoder itself is fuzzed by FuzzDecode in broker/amqp
// (its seed corpus runs with every go test).
func TestMalformedMessages(t *testing.T) {
	t.Parallel()
	x := setup(t, setupOpts{})
	victim := x.queue + "v"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, q := range []string{x.queue, victim} {
		if err := x.ctl.Declare(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = x.ctl.DeleteQueue(ctx, victim)
	})

	now := time.Now().UnixMilli()
	valid := func(id string, body string, extra amqp091.Table) amqp091.Publishing {
		h := amqp091.Table{"x-warren-version": int64(1), "x-warren-queue": x.queue, "x-warren-enqueued-at": now}
		for k, v := range extra {
			h[k] = v
		}
		return amqp091.Publishing{MessageId: id, Type: faults.TaskKind, ContentType: "application/json",
			DeliveryMode: amqp091.Persistent, Headers: h, Body: []byte(body)}
	}
	with := func(p amqp091.Publishing, f func(*amqp091.Publishing)) amqp091.Publishing { f(&p); return p }
	routing := amqp091.Table{
		"CC":  []any{"warren." + victim},
		"BCC": []any{"warren." + victim},
	}
	retryOnce := amqp091.Table{"x-warren-max-retries": int64(1), "x-warren-retry-delay-ms": int64(1000)}
	merged := func(ts ...amqp091.Table) amqp091.Table {
		out := amqp091.Table{}
		for _, t := range ts {
			for k, v := range t {
				out[k] = v
			}
		}
		return out
	}
	huge := `"` + strings.Repeat("a", 2<<20) + `"`

	cases := []rawCase{
		{name: "not-json", pub: valid("s6-not-json", `{"seq": 1,`, nil), outcome: "malformed"},
		{name: "binary-body", pub: valid("s6-binary-body", "\x00\xff\xfe", nil), outcome: "malformed"},
		{name: "no-headers", pub: with(valid("s6-no-headers", `{"seq":1}`, nil), func(p *amqp091.Publishing) { p.Headers = nil }), outcome: "malformed"},
		{name: "version-2", pub: valid("s6-version-2", `{"seq":1}`, amqp091.Table{"x-warren-version": int64(2)}), outcome: "unknown wire version"},
		{name: "version-string", pub: valid("s6-version-string", `{"seq":1}`, amqp091.Table{"x-warren-version": "1"}), outcome: "malformed"},
		{name: "unknown-kind", pub: with(valid("s6-unknown-kind", `{"seq":1}`, nil), func(p *amqp091.Publishing) { p.Type = "no.such.kind" }), outcome: "unknown kind"},
		{name: "no-kind", pub: with(valid("s6-no-kind", `{"seq":1}`, nil), func(p *amqp091.Publishing) { p.Type = "" }), outcome: "malformed"},
		{name: "args-wrong-type", pub: valid("s6-args-wrong-type", `{"seq":"three"}`, nil), outcome: "wrong shape"},
		{name: "args-array", pub: valid("s6-args-array", `[1,2,3]`, nil), outcome: "wrong shape"},
		{name: "huge-body", pub: valid("s6-huge-body", huge, nil), outcome: "payload too large"},
		{name: "attempt-string", pub: valid("s6-attempt-string", `{"seq":1}`, amqp091.Table{"x-warren-attempt": "zero"}), outcome: "malformed"},
		{name: "attempt-negative", pub: valid("s6-attempt-negative", `{"seq":1}`, amqp091.Table{"x-warren-attempt": int64(-5)}), outcome: "malformed"},
		{name: "timeout-float", pub: valid("s6-timeout-float", `{"seq":1}`, amqp091.Table{"x-warren-timeout-ms": 1.5}), outcome: "malformed"},
		{name: "meta-not-table", pub: valid("s6-meta-not-table", `{"seq":1}`, amqp091.Table{"x-warren-meta": "k=v"}), outcome: "malformed"},
		{name: "meta-not-strings", pub: valid("s6-meta-not-strings", `{"seq":1}`, amqp091.Table{"x-warren-meta": amqp091.Table{"k": int32(5)}}), outcome: "malformed"},
		{name: "queue-header-invalid", pub: valid("s6-queue-header-invalid", `{"seq":1}`, amqp091.Table{"x-warren-queue": "../../etc"}), outcome: "malformed"},
		{name: "no-message-id", pub: valid("", `{"seq":1,"pad":"s6-no-message-id"}`, nil), outcome: "malformed"},
		{name: "long-message-id", pub: valid("s6-long-message-id-"+strings.Repeat("x", 200), `{"seq":1}`, nil), outcome: "malformed"},
		{name: "cc-bcc-malformed", pub: valid("s6-cc-bcc-malformed", `not json`, routing), outcome: "malformed", ccs: 1},
		// Valid tasks with hostile headers: the headers are ignored, never
		// copied when warren republishes (retry, dead letter).
		{name: "cc-bcc-ok", pub: valid("s6-cc-bcc-ok", `{"seq":1}`, routing), outcome: "done", ccs: 1},
		{name: "cc-bcc-poison", pub: valid("s6-cc-bcc-poison", `{"seq":1,"fail":true}`, merged(routing, retryOnce)), outcome: "max retries exceeded", attempt: 2, ccs: 1},
		{name: "queue-header-other", pub: valid("s6-queue-header-other", `{"seq":1,"fail":true}`, merged(retryOnce, amqp091.Table{"x-warren-queue": victim})), outcome: "max retries exceeded", attempt: 2},
		{name: "junk-headers", pub: valid("s6-junk-headers", `{"seq":1}`, amqp091.Table{
			"x-death": "forged", "x-foo": amqp091.Table{"a": []any{int8(1), nil, 2.5}}, "x-big": strings.Repeat("h", 60000),
		}), outcome: "done"},
	}

	// The worker runs while the messages arrive; a canary enqueued after
	// them must still complete.
	worker := x.startWorker(workerOpts{concurrency: 4, prefetch: 8})
	conn, err := amqp091.Dial(x.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ledger := x.recorder("raw")
	ccs := 0
	for _, c := range cases {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "warren."+x.queue, true, false, c.pub)
		if err != nil {
			t.Fatalf("%s: publish: %v", c.name, err)
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("%s: not confirmed: %v", c.name, err)
		}
		if err := ledger.Record(faults.OpEnqueued, caseID(c), 0); err != nil {
			t.Fatal(err)
		}
		ccs += c.ccs
	}
	p := x.producer(x.ctl, 30*time.Second)
	if _, err := p.Enqueue(ctx, "s6-canary-", tasks(0, 1, nil), nil); err != nil {
		t.Fatal(err)
	}

	// Every case ends as expected: done, or dead-lettered with its reason.
	var dead map[string]*broker.Message
	var missing []string
	settled := func() bool {
		dead = map[string]*broker.Message{}
		for _, m := range x.deadQuick() {
			dead[deadID(m)] = m
		}
		h := x.history(false)
		missing = nil
		for _, c := range cases {
			if c.outcome == "done" && h.Runs[caseID(c)] == 0 || c.outcome != "done" && dead[caseID(c)] == nil {
				missing = append(missing, c.name)
			}
		}
		if h.Runs[faults.TaskID("s6-canary-", 0)] != 1 {
			missing = append(missing, "canary")
		}
		return len(missing) == 0
	}
	for deadline := time.Now().Add(time.Minute); !settled(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			vs, _ := x.ctl.Stats(ctx, victim)
			x.dumpLogs()
			t.Fatalf("after 1m, not settled as expected: %v (victim queue: %+v)", missing, vs)
		}
	}
	for _, c := range cases {
		m := dead[caseID(c)]
		switch {
		case c.outcome == "done":
			if m != nil {
				t.Errorf("%s: dead-lettered (%s), want it done", c.name, m.DeadReason)
			}
		case !strings.Contains(m.DeadReason, c.outcome):
			t.Errorf("%s: dead reason %q, want it to mention %q", c.name, m.DeadReason, c.outcome)
		case c.attempt != 0 && m.Attempt != c.attempt:
			t.Errorf("%s: dead-lettered at attempt %d, want %d", c.name, m.Attempt, c.attempt)
		default:
			t.Logf("%-22s dead-lettered: %.110s", c.name, m.DeadReason)
		}
	}
	if !worker.alive() {
		t.Fatalf("the worker died:\n%s", tail(worker.log, 30))
	}

	// Nothing was routed anywhere else: the victim queue holds only the
	// copies RabbitMQ made of the raw publishes, and no dead letter carries
	// a routing header.
	vs, err := x.ctl.Stats(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if vs.Ready != ccs {
		t.Errorf("victim queue holds %d messages, want the %d CC/BCC copies of the raw publishes: warren routed copies there", vs.Ready, ccs)
	}
	for _, h := range rawDeadHeaders(t, x.url, x.queue) {
		for _, k := range []string{"CC", "BCC"} {
			if _, ok := h[k]; ok {
				t.Errorf("a dead letter carries a %s header", k)
			}
		}
	}
	x.stopWorkers()
	h := x.history(false)
	for _, m := range x.dead() {
		m.ID = deadID(m)
		h.AddDead([]*broker.Message{m})
	}
	x.report("6. malformed messages", fmt.Sprintf("%d raw messages: not JSON, unknown kind, wrong types, 2 MiB body, hostile headers", len(cases)),
		h, fmt.Sprintf("%d dead-lettered with a reason, %d valid ones with hostile headers done; no crash",
			len(dead), countOutcome(cases, "done")))
}

// caseID is how a case is found in the history: its message ID, or for the
// case without one, the marker in its body.
func caseID(c rawCase) string {
	if c.pub.MessageId == "" {
		return "s6-no-message-id"
	}
	return c.pub.MessageId
}

func deadID(m *broker.Message) string {
	if m.ID == "" && strings.Contains(string(m.Args), "s6-no-message-id") {
		return "s6-no-message-id"
	}
	return m.ID
}

func countOutcome(cases []rawCase, outcome string) int {
	n := 0
	for _, c := range cases {
		if c.outcome == outcome {
			n++
		}
	}
	return n
}

// rawDeadHeaders reads the headers of every dead letter of queue without
// removing any (basic.get without ack; closing the channel requeues them).
func rawDeadHeaders(t *testing.T, url, queue string) []amqp091.Table {
	t.Helper()
	c, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var out []amqp091.Table
	for {
		d, ok, err := ch.Get("warren."+queue+".dead", false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, d.Headers)
	}
}
