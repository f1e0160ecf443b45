package amqp

import (
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// benchMessage is a typical freshly enqueued task: 200 bytes of JSON args.
func benchMessage() *broker.Message {
	now := time.Now()
	return &broker.Message{
		ID: "0b7e8b1e-5d0f-4a51-9e1c-3f1d2a6b7c8d", Kind: "email.send", Queue: "emails",
		Args:       []byte(`{"to":"someone@example.com","pad":"` + strings.Repeat("x", 200-40) + `"}`),
		MaxRetries: -1, EnqueuedAt: now,
	}
}

// received is what a consumer gets back for pub.
func received(pub amqp.Publishing) *amqp.Delivery {
	return &amqp.Delivery{
		Headers: pub.Headers, ContentType: pub.ContentType, DeliveryMode: pub.DeliveryMode,
		MessageId: pub.MessageId, Timestamp: pub.Timestamp, Type: pub.Type, AppId: pub.AppId, Body: pub.Body,
	}
}

// BenchmarkEncode measures building the AMQP publishing of a message.
func BenchmarkEncode(b *testing.B) {
	m := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		_ = encode(m)
	}
}

// BenchmarkRoute measures everything Publish does to one message before
// writing it: validation, encoding, the body copy and the routing key.
func BenchmarkRoute(b *testing.B) {
	m := benchMessage()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := broker.ValidateQueueName(m.Queue); err != nil {
			b.Fatal(err)
		}
		if err := check(m); err != nil {
			b.Fatal(err)
		}
		if _, err := route(m, now, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode measures turning a delivery back into a message, with
// every check a consumer applies.
func BenchmarkDecode(b *testing.B) {
	d := received(encode(benchMessage()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(d, "emails"); err != nil {
			b.Fatal(err)
		}
	}
}
