// Package bench measures warren beside raw amqp091-go on the same RabbitMQ, in
// one run, and reports each figure as a ratio to raw: absolute numbers drift
// between machines and runs, ratios measured back to back do not. It is the
// library behind `warren bench`.
//
// Every scenario declares fresh, uniquely named durable quorum queues, sends
// persistent messages with 200-byte JSON args, and deletes its queues when it
// ends. It runs only against a broker on this machine (a loopback address):
// a benchmark is load, and load stays local. Counts and times are bounded.
//
//	enqueue-16   16 concurrent callers of Client.Enqueue, vs one raw publisher
//	             with a pipelined confirm window of 1,000; EnqueueMany in
//	             batches of 1,000 as an extra line.
//	latency-1    one caller of Client.Enqueue (p50, p99) vs one raw
//	             publish-and-confirm round trip, interleaved in blocks.
//	drain        n no-op tasks drained by one Runner with events on, vs raw
//	             consume-and-ack with the same prefetch; both backlogs are
//	             pre-filled with the same raw publishes (WIRE.md messages).
//	events-cost  the same drain with events on vs events off.
//	e2e-latency  enqueue-to-handler-start p50/p99, open loop at 50% of the
//	             measured maximum rate, measured from each task's intended
//	             send time (a stalled sender cannot hide latency); raw
//	             publish-to-receive at the same rate.
//	memory       RSS of a worker process (this binary re-executed) under a
//	             backlog of 10n tasks, at start and after draining a while,
//	             beside a raw consumer process with the same prefetch.
//
// Sizes derive from n (default 100,000): enqueue-16, drain and events-cost
// move n tasks per side; latency-1 takes min(n, 2,000) samples per side;
// e2e-latency probes the maximum rate with n/2 tasks and sends n/2 more open
// loop; memory pre-fills 10n tasks.
//
// Usage, from the command line:
//
//	WARREN_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ warren bench --scenario all --json
//
// or from Go:
//
//	rep, err := bench.Run(ctx, bench.Config{URL: url, Scenarios: []string{"drain"}, N: 10000})
package bench
