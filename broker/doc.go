// Package broker is the seam between warren's job engine (package jobs) and a
// message transport. It speaks in Messages — a task with its wire-level fields —
// and promises confirmed publishes, consumption with a prefetch limit, and the
// four ways to settle a delivery: ack, retry later, dead-letter, requeue.
//
// Two implementations exist: broker/amqp (RabbitMQ, the source of truth) and
// broker/memory (in-process, for tests and `warren dev`). Both pass the
// conformance suite in broker/brokertest.
//
// Queue names are logical ("emails"); implementations derive their own object
// names from them (RabbitMQ: "warren.emails", "warren.emails.dead").
package broker
