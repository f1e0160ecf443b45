// Package amqp is warren's broker on RabbitMQ (3.10 and later) through
// amqp091-go: the broker.Broker that production runs on. It lays out queues,
// delay levels, dead-letter queues and the events stream as WIRE.md (at the
// repository root) specifies, and keeps warren's at-least-once promise
// through connection loss, broker restarts and resource alarms.
//
//	b, err := amqp.Open(ctx, amqp.Config{URL: "amqp://guest:guest@localhost:5672/"})
//	if err != nil { ... }
//	defer b.Close()
//	err = b.Publish(ctx, []*broker.Message{msg}) // returns once RabbitMQ confirmed
//
// # Connections
//
// Publishing and consuming never share a connection (RabbitMQ's flow control
// and alarms block a publishing connection; acks must keep flowing). A Broker
// has:
//
//   - one publishing connection with a pool of confirm-mode channels
//     (Config.PublishChannels);
//   - one connection per subscription and per events follower, each with a
//     single channel;
//   - one administrative connection for short operations (declares, Stats,
//     Purge, DeleteQueue, dead-letter scans, Ping), each on a channel opened
//     and closed around it.
//
// The publishing and consuming connections recover through amqp091-go's own
// recovery (Config.Recovery: attempts never stop, Config.ReconnectInterval
// apart; channels come back with QoS and confirm mode; topology and consumer
// recovery are off, because warren declares its topology itself and starts
// its consumers on fresh sessions). The administrative connection does not
// recover: it is dialled on first use and dialled again when found dead. Its
// operations close channels on purpose (a passive declare of a missing queue
// ends its channel with 404), and amqp091-go v1.17.0 wedges connection
// recovery for good when a channel is closed while its connection is down
// (every reconnect attempt then fails on that channel), so throwaway channels
// only ever live on a connection that never recovers. For the same reason no
// channel on a recovering connection is ever closed on its own: a
// subscription or follower ends by closing its whole connection.
//
// Every write to a socket gets a deadline (three heartbeats, at least 30 s),
// so a write stuck in a partitioned socket cannot hold a channel's lock
// while the heartbeat timeout tries to tear the connection down.
//
// # Publishing
//
// Publish validates each message (the same rules the decoder applies),
// declares what it needs, writes the messages with mandatory set, then waits
// for every confirm: pipelined. A call of fewer than 256 messages writes on
// the first ready channel of the pool (one broker channel process confirms
// concurrent small publishes fastest); a larger one is split over the pool's
// channels. The publishing socket is corked around every call's writes (see
// socketConn), so a batch, and whatever other callers write meanwhile, goes
// out in few write system calls instead of one per message. A basic.return counts as failure: RabbitMQ sends it
// before the confirm of the same message on the same channel, and one
// goroutine per channel owns the return listener; after a confirm, that
// goroutine drains the listener before it says whether the message came
// back. A message to a queue deleted behind the Broker's back comes back;
// Publish then declares the queue again and publishes it once more.
//
// Publish never reports success it cannot vouch for, and returns within its
// context's deadline. While RabbitMQ blocks the connection (memory or disk
// alarm, connection.blocked) it fails at once with ErrBlocked instead of
// writing into a socket nobody reads; while the connection is being
// recovered it fails at once with ErrNotConnected; a confirm that never
// came because the connection was lost is ErrConnectionLost (the outcome is
// unknown: the message may be in the queue). A caller may publish again and
// accept a duplicate.
//
// # Topology and delays
//
// Everything is declared lazily and once per process: the 28 delay levels
// on the first Declare, Publish or Consume; a work queue, its dead-letter
// queue and its delay binding on first use; the events stream on first use.
// Declaring is idempotent, so the cache only saves round trips; an entry is
// forgotten when the broker shows the object is gone (a returned publish, a
// 404 on a publishing channel) and declared again on next use.
//
// A message due now (RunAt zero or past) goes to the work queue through the
// default exchange; a later one to the delay levels, its delay rounded up to
// whole seconds (at most 2^28-1 s). Measured here: delays arrive 10-20 ms
// after due. A broker outage that spans one of a message's level expiries
// delays it by up to the outage. Delayed messages whose queue was deleted
// while they waited end up in warren.delay.unroutable (see WIRE.md for why
// that matters).
//
// # Consuming
//
// After a reconnect amqp091-go reuses the same *Channel object (every
// delivery's Acknowledger) for a new server channel whose delivery tags
// start again at 1: acking a delivery of the old session through it would
// close the new channel (unknown tag) or ack a different message that
// happens to carry the same tag — a task lost. So a subscription tracks
// sessions. Custom recovery hooks run synchronously when the connection or
// channel is lost, before the library reconnects anything, and mark the
// session dead under a lock that every settle holds while it checks its
// session and sends its ack: a settle either completes on the session that
// delivered the message or returns ErrSessionLost and sends nothing. The
// broker requeued everything the dead session held and delivers it again.
// When the link is up again the subscription starts a new consumer by itself.
//
// A delivery settles once: a second settle returns an error and sends
// nothing (a second ack of a tag closes the channel). Retry and DeadLetter
// publish with confirms first, then ack; if the publish fails nothing is
// acked and the delivery may be settled otherwise. Requeue is a nack with
// requeue, meant for shutdown only (on RabbitMQ before 4.3 it counts toward
// the work queue's delivery limit of 50).
//
// Acks are batched per session (acks.go): an Ack is held for at most about
// a millisecond, then one basic.ack with multiple=true settles the run of
// settled delivery tags at the head of the session. It never covers a
// delivery still being worked on or one that was nacked: acks behind such a
// delivery wait a few rounds and then go one by one. Close flushes every
// held ack before the connection closes. A held ack dies with its session
// like an ack written into a dying socket: the task runs again (at least
// once). One ack frame per batch instead of per task roughly doubled the
// drain rate of no-op tasks on a 2-core machine.
//
// A delivery that is not a valid warren message arrives with DecodeErr
// (wrapping ErrMalformed) and whatever could be read. Dead-lettering it
// keeps it as it came: body, properties and x-warren-* headers, no other
// header (never CC or BCC). A message's Queue is the queue it was consumed
// from, whatever its header says: a header never decides where a task is
// routed.
//
// # Dead letters
//
// Dead-letter queues are classic queues: no delivery limit, so browsing can
// never make the broker drop one, and a dead letter released unacked goes
// back to its place. Dead, RetryDead and DeleteDead consume on a fresh
// channel at most what the queue held when they started, ack only what they
// remove, and close the channel, which puts the rest back in order. RetryDead
// republishes with confirms before it acks: a crash in between leaves a
// duplicate, never a loss. Within a process these operations are serialised
// per queue, so concurrent browses all see every dead letter; across
// processes, a letter held by one operation is invisible to another while it
// runs. One operation holds at most 65535 letters (the AMQP prefetch limit).
//
// # Events
//
// AppendEvents publishes a batch to the stream warren.events.stream with a
// confirm. FollowEvents consumes the stream from the first retained batch
// or from a time (filtered to the millisecond by the x-warren-appended-at
// header) on its own connection, and after a lost connection resumes right
// after the last batch it handed over. It acks in batches (a multiple-ack
// every 64 deliveries or after 50 ms): stream acks only grant credit, and it
// reads in order.
//
// # Credentials
//
// The password of Config.URL never appears in a log line or an error.
package amqp
