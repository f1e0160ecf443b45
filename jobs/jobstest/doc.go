// Package jobstest helps users test their own job code without RabbitMQ.
//
//   - Work runs one handler on given args, as a runner would (JSON round trip,
//     time limit, panic recovery), with no broker at all.
//   - NewClient returns a real *jobs.Client on the in-memory broker, with a
//     Recorder of everything the code under test enqueued, for assertions
//     such as RequireEnqueued.
//   - Drain executes everything enqueued and due, synchronously, with your
//     registered workers.
//
// Everything runs in-process in milliseconds.
package jobstest
