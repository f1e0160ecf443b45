package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
)

func Example() {
	ctx := context.Background()
	b := memory.New(memory.Config{})
	defer b.Close()

	err := b.Publish(ctx, []*broker.Message{{
		ID: "task-1", Kind: "email.send", Queue: "emails", Args: []byte(`{"to":"ada@example.com"}`),
	}})
	if err != nil {
		panic(err)
	}
	sub, err := b.Consume(ctx, "emails", 10)
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	d := <-sub.Deliveries()
	fmt.Println(d.Message().Kind, string(d.Message().Args))
	if err := d.Ack(ctx); err != nil {
		panic(err)
	}
	st, _ := b.Stats(ctx, "emails")
	fmt.Printf("ready %d, consumers %d, dead %d\n", st.Ready, st.Consumers, st.Dead)
	// Output:
	// email.send {"to":"ada@example.com"}
	// ready 0, consumers 1, dead 0
}

// A failed attempt is retried later: Retry holds the next attempt until its
// RunAt, then delivers it again.
func ExampleBroker_retry() {
	ctx := context.Background()
	b := memory.New(memory.Config{})
	defer b.Close()

	_ = b.Publish(ctx, []*broker.Message{{ID: "task-1", Kind: "report.build", Queue: "reports", Args: []byte(`{}`)}})
	sub, _ := b.Consume(ctx, "reports", 1)
	defer sub.Close()

	d := <-sub.Deliveries()
	next := d.Message().Clone()
	next.Attempt++
	next.LastError = "database busy"
	next.RunAt = time.Now().Add(50 * time.Millisecond)
	if err := d.Retry(ctx, next); err != nil {
		panic(err)
	}
	st, _ := b.Stats(ctx, "reports")
	fmt.Println("ready while held:", st.Ready)

	d = <-sub.Deliveries()
	fmt.Println("attempt", d.Message().Attempt, "after", d.Message().LastError)
	_ = d.Ack(ctx)
	// Output:
	// ready while held: 0
	// attempt 1 after database busy
}
