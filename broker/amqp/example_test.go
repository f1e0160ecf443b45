package amqp_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp"
)

// Publish a task with a confirm, consume it and ack it. (Runs against
// $WARREN_AMQP_URL or a local RabbitMQ.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := os.Getenv("WARREN_AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	b, err := amqp.Open(ctx, amqp.Config{URL: url, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	queue := fmt.Sprintf("example-%d", time.Now().UnixNano())
	defer b.DeleteQueue(ctx, queue)

	err = b.Publish(ctx, []*broker.Message{{
		ID:         "task-1",
		Kind:       "email.send",
		Queue:      queue,
		Args:       []byte(`{"to":"ada@example.com"}`),
		MaxRetries: -1,
		EnqueuedAt: time.Now(),
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	sub, err := b.Consume(ctx, queue, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	d := <-sub.Deliveries()
	fmt.Println(d.Message().Kind, string(d.Message().Args))
	if err := d.Ack(ctx); err != nil {
		fmt.Println(err)
	}
	// Output: email.send {"to":"ada@example.com"}
}
