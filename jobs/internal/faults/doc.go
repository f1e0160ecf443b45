// Package faults is warren's fault-injection suite: it checks the reliability
// contract (DESIGN.md: a task whose Enqueue returned nil runs to completion at
// least once or ends dead-lettered, through crashes, restarts and connection
// loss) against a real RabbitMQ, the way Jepsen checks databases.
//
// # Method
//
// Every task carries a unique ID chosen by the producer. Producers record
// each ID whose Enqueue returned nil (OpEnqueued) and each whose Enqueue
// failed (OpEnqueueError: it may or may not run). Handlers record each
// attempt, OpDone when they complete. Dead letters are read at the end with
// broker.Dead. The checker (Check) then computes
//
//	lost       = confirmed − (executed ∪ dead-lettered)        must be empty
//	duplicated = completed executions beyond one per task      bounded, reported
//	unexpected = (executed ∪ dead-lettered) − (confirmed ∪ errored)  must be empty
//
// Records are plain text lines appended with one write(2) to a file per
// process (see Recorder), so they survive SIGKILL of the process that wrote
// them. The worker and producer run as separate processes — the faultworker
// program in ./faultworker, built by the tests' TestMain — so that they can
// be killed for real.
//
// # Scenarios
//
// Each is a test of this package; scenarios 1–8 run in CI (go test -race
// ./...), and scenario 9 only with WARREN_SOAK=1.
//
//  1. TestWorkerSIGKILL: worker processes SIGKILLed every 1.5–2.5 s during a
//     20,000-task run; duplicates ≤ prefetch × kills.
//  2. TestBrokerKill: a throwaway RabbitMQ node killed with kill -9 and
//     restarted, twice, during enqueue and consumption; a tenth of the tasks
//     fail once, so their retries wait in the delay levels across the crashes.
//  3. TestNetworkCutAndBlackhole: connections cut, and black-holed longer
//     than the heartbeat; Enqueue returns within its deadline, consumption
//     (retries included) resumes by itself.
//  4. TestMemoryAlarm: a memory alarm on a throwaway node; Enqueue fails
//     within its deadline, consumers keep working, tasks that fail under the
//     alarm are retried once it clears, everything flows after.
//  5. TestPoisonAndPanic: 1% of tasks always fail or panic; each is
//     dead-lettered after exactly its retries while the rest flow at ≥ 90% of
//     a baseline measured side by side.
//  6. TestMalformedMessages: messages no warren producer would send,
//     published raw; each is dead-lettered with a reason, nothing crashes,
//     hostile headers (CC/BCC, a queue header naming another queue) never
//     route a copy anywhere. The decoder behind it is fuzzed by FuzzDecode in
//     broker/amqp, whose seed corpus runs with every go test.
//  7. TestDeadRetryRace, TestDeadRetryCrash, TestDeadRetryBrokerCrash: two
//     operators retry the same dead letters at once; an operator's
//     connection dies mid-retry; the broker is killed mid-retry. Each task
//     ends in its queue or its dead-letter queue, never neither.
//  8. TestGracefulShutdown: SIGTERM to workers while tasks run: nothing
//     lost, nothing duplicated, every worker exits 0.
//  9. TestSoak: 30 minutes mixing 1–3; the worker's goroutines and open
//     files stay flat.
//
// Bugs it found are fixed, each with a regression test next to the fix:
// retries routed by the message's own x-warren-queue header
// (broker/amqp TestRetryStaysInDeliveringQueue), Run reporting a clean
// shutdown as an error at random (jobs
// TestRunCleanWhenSubscriptionClosesOnShutdown), and a retry or dead letter
// whose publish failed under a memory alarm stranded unacknowledged until
// the broker's consumer timeout (jobs TestSettleRetriedWhenPublishFails).
//
// # Running
//
//	go test -race -count=1 ./jobs/internal/faults
//	WARREN_FAULTS_REPORT=docs/faults.md go test -race -count=1 ./jobs/internal/faults   # write the results table
//	WARREN_SOAK=1 go test -race -count=1 -run TestSoak -timeout 45m ./jobs/internal/faults
//
// The shared broker is the one amqptest.URL finds; scenarios that kill or
// starve the broker start their own node with amqptest.StartNode.
// WARREN_TEST_LOG=1 shows the tests' own broker logs; the workers' logs are
// printed when a scenario fails.
package faults
