// Package brokertest is the conformance suite every broker.Broker implementation
// must pass, in the manner of Watermill's tests.TestPubSub. An implementation's
// own test calls Run with a constructor for fresh, connected brokers:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) broker.Broker {
//			return memory.New(memory.Config{})
//		}, brokertest.Features{})
//	}
//
// # What the suite checks
//
// Everything the broker package's documentation promises that can be observed
// through the seam: every Message field survives a round trip; confirmed
// publishing and declaring; prefetch; each way of settling a delivery (ack,
// retry later, dead-letter, requeue) and settling twice; what Stop and Close do
// to unsettled deliveries; delayed delivery on time and without head-of-line
// blocking; queue figures, purge and delete; browsing, retrying and deleting dead
// letters without ever losing one; the events log (replay, then follow); and the
// behaviour of a closed broker. Run lists the subtests.
//
// Not covered, because the seam cannot express them: durability across broker
// restarts, connection loss and recovery, and malformed messages on the wire
// (Delivery.DecodeErr). Those belong to the implementation's own tests
// (broker/amqp tests them against RabbitMQ).
//
// # Rules the suite keeps
//
// Every subtest runs in parallel with the others (t.Parallel) on a broker of its
// own from newBroker, uses queues with unique random names ("bt-<test>-<random>")
// and deletes them in t.Cleanup. Asynchronous outcomes are awaited with bounded
// polls (10 s at most); absence ("nothing else arrives") is checked over a
// 300 ms quiet window. The longest delay the suite asks for is 2 s. Subtests
// mostly wait, so raise go test's -parallel (default GOMAXPROCS): on 2 cores
// the memory broker takes about 7 s at the default and 3 s with -parallel 32;
// broker/amqp against a local RabbitMQ about 10 s and 5 s.
//
// The events log is shared by everything that uses a broker (on RabbitMQ one
// stream for all tests and runs), so the events subtests recognise their own
// batches by unique content and never assume the log is empty.
//
// # Who closes the broker
//
// The suite does. Each subtest calls newBroker once (Closed calls it twice), and
// registers Close with t.Cleanup right away, so it runs after the subtest's
// queues were deleted. newBroker should fail the test (t.Fatal) if it cannot
// connect, and may register its own cleanups for anything else it set up.
// Close may be called more than once (the suite closes some brokers itself
// before cleanup runs); the result of a second Close is ignored.
package brokertest
