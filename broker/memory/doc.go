// Package memory is an in-process broker.Broker with the semantics of warren's
// RabbitMQ broker (broker/amqp): confirmed publishes, prefetch, the four ways
// to settle a delivery, delayed delivery, dead letters and the events log. It
// is for unit tests (package jobs/jobstest) and `warren dev`, and passes the
// same conformance suite (broker/brokertest).
//
//	b := memory.New(memory.Config{})
//	defer b.Close()
//	_ = b.Publish(ctx, []*broker.Message{{ID: "t1", Kind: "email.send", Queue: "emails", Args: []byte(`{}`)}})
//	sub, _ := b.Consume(ctx, "emails", 10)
//	d := <-sub.Deliveries()
//	_ = d.Ack(ctx)
//
// # How it works
//
// One mutex guards all queues; every operation is a short critical section
// that never blocks, so a message is stored — confirmed — when Publish returns.
// Messages are deep-copied at the boundary: the broker keeps its own copy of
// what it is given, and hands out copies (Delivery.Message, Dead), so callers
// can never alias its state. One goroutine runs per broker, the delay router,
// sleeping on a timer set for the earliest held message; and one per
// FollowEvents call, feeding its channel.
//
// # Differences from RabbitMQ
//
//   - Nothing survives the process: there is no durability, no connection to
//     lose, and Ping fails only after Close.
//   - Delays are exact to the millisecond: a message is due at its RunAt.
//     broker/amqp rounds a delay up to whole seconds.
//   - Messages returned by Requeue or a subscription's Close go to the head of
//     the queue, ahead of all others, in the order they were first stored.
//     RabbitMQ's quorum queues (which warren uses) also serve returned
//     messages first, but in the order they were returned (Close returns a
//     channel's deliveries in delivery order), so the two differ when returns
//     come out of store order. Nothing in warren depends on that order.
//   - There is no delivery limit. On RabbitMQ a message returned to its queue
//     50 times (x-delivery-limit) is dead-lettered by the broker itself.
//   - Like the wire format, times are kept at millisecond precision (in the
//     local time zone; a zero time stays zero) and Timeout and RetryDelay in
//     whole milliseconds. Message sizes are not limited.
//   - Deliveries are never malformed: DecodeErr is always nil.
//   - Consume declares its queue. prefetch must lie in 1..MaxPrefetch (65535,
//     AMQP's limit).
//   - Stats.Ready counts ready messages only: not unsettled deliveries, not
//     delayed messages (held by the delay router, not yet in the queue), as
//     RabbitMQ's message count.
//   - Dead returns up to limit dead letters however large limit is
//     (broker/amqp: at most 65535 per call); none for limit <= 0.
//   - Retry and DeadLetter with an empty Queue in the message use the
//     delivery's queue.
//   - DeleteQueue ends the queue's subscriptions (Err wraps
//     broker.ErrQueueNotFound). Their unsettled deliveries can still be
//     settled; Ack and Requeue then change nothing.
//   - The events log keeps batches within Config's limits (count, bytes, age),
//     oldest dropped first; offsets start at 0 for each Broker. A follower
//     slower than the retention skips the batches dropped meanwhile, as a
//     stream consumer does. EventBatch.Time is the append time, never going
//     backwards.
package memory
