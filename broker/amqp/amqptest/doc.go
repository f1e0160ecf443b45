// Package amqptest gives tests a real RabbitMQ to talk to, and the means to break it.
//
// Three tools, from cheapest to most invasive:
//
//   - [URL] returns the address of a reachable broker that many tests share: the one
//     named by $WARREN_AMQP_URL, or amqp://guest:guest@127.0.0.1:5672/, or — when
//     neither answers but rabbitmq-server is installed — one throwaway node started
//     for the whole test binary. Tests that share it must use unique queue names.
//   - [NewProxy] puts a TCP proxy between a client and a broker, so a test can cut
//     every connection ([Proxy.Cut]) or silently stop forwarding bytes
//     ([Proxy.Blackhole]) the way a network partition does, without touching the broker.
//   - [StartNode] starts a private RabbitMQ node (own node name, ports and data
//     directory) for tests that kill, restart or starve the broker itself.
//
// Integration tests never skip: when no broker can be found, [URL] fails the test
// with one line that says what to run. The password of an AMQP URL is never printed.
//
// # Nodes
//
// A node is started from the installed RabbitMQ scripts (/usr/lib/rabbitmq/bin on
// Debian, Ubuntu and RPM systems, else rabbitmq-server from $PATH), in the
// foreground, as a child of the test process and as the user running the test
// (root included: the scripts are called directly, not through Debian's wrapper
// that switches to the rabbitmq user). Each node gets:
//
//   - a unique name, warren-<pid>-<n>@localhost;
//   - two free loopback ports, AMQP and Erlang distribution;
//   - its own directory under $TMPDIR holding data, logs, the pid file, an empty
//     plugin list and its own rabbitmq.conf and rabbitmq-env.conf, so the system's
//     /etc/rabbitmq (which binds the shared broker's port) is never read;
//   - a random Erlang cookie, passed to the node with -setcookie and to
//     rabbitmqctl with --erlang-cookie, so control works whatever $HOME/.erlang.cookie
//     holds and whichever user runs the test.
//
// Because the script execs all the way down, the child process is the Erlang VM
// itself: [Node.Kill] is a real kill -9 of the broker. On Linux the child gets
// SIGKILL when the test process dies (PR_SET_PDEATHSIG), so an interrupted or
// timed-out test binary leaves no node behind; data directories of dead test
// processes are removed the next time a node starts. A node starts in about 5 s
// on an idle 2-core machine (RabbitMQ 3.10); parallel starts share the CPU.
//
// The node [URL] may start is shared by every test of the binary and lives until
// the binary exits; the nodes of [StartNode] are removed by t.Cleanup.
//
// # Facts worth knowing (RabbitMQ 3.10.8, amqp091-go 1.17)
//
//   - As root, /usr/sbin/rabbitmqctl is Debian's wrapper: it runs the real CLI as
//     the rabbitmq user with that user's cookie (/var/lib/rabbitmq/.erlang.cookie),
//     while /usr/lib/rabbitmq/bin/rabbitmqctl run as root reads /root/.erlang.cookie
//     and cannot reach a node the wrapper started. Nodes of this package carry their
//     own cookie, so [Node.Ctl] works either way.
//   - A quorum queue declared less than about a second before a kill -9 comes back
//     empty: RabbitMQ records its Raft server in a DETS table saved every 500 ms.
//     [Node.Kill] syncs that table first; see there.
//   - Through a blackholed [Proxy], amqp091-go closes the connection after 1.5
//     heartbeat intervals without a byte (it checks every half interval and allows
//     three misses); RabbitMQ gives up on its side after two intervals.
//
// # Example
//
//	func TestSurvivesBrokerCrash(t *testing.T) {
//		t.Parallel()
//		node := amqptest.StartNode(t)
//		// ... connect to node.URL(), publish ...
//		node.Kill(t)
//		node.Start(t)
//		// ... connect again, the durable queue is still there ...
//	}
package amqptest
