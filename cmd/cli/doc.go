// Package cli is warren's command tree: the worker daemon and the operations
// commands, built with cobra and reusable from a user's own binary with the
// user's job kinds registered:
//
//	func main() {
//		workers := jobs.NewWorkers()
//		jobs.AddWorker(workers, &SendEmailWorker{})
//		os.Exit(cli.Execute(context.Background(), workers))
//	}
//
// That binary then has `worker`, `enqueue`, `queues`, `dead`, `tasks`,
// `workers` and `version` (see docs/cli.md for every flag and the --json
// field names). The package is wiring: flags, configuration, signals and
// output; the behaviour lives in package jobs and the broker.
//
// # Configuration
//
// Every setting comes from a flag, else from its WARREN_* environment
// variable, else from its default: WARREN_AMQP_URL (default
// amqp://guest:guest@localhost:5672/), WARREN_LOG_FORMAT, WARREN_LOG_LEVEL,
// and for the worker WARREN_QUEUES, WARREN_CONCURRENCY, WARREN_PREFETCH,
// WARREN_SHUTDOWN_TIMEOUT, WARREN_EXIT_WHEN_IDLE and WARREN_HTTP. The
// password of an AMQP URL is never printed: logs and errors show it as xxxxx.
//
// # Extending the tree
//
// NewRootCommand returns the root *cobra.Command, so a program can add its
// own commands with AddCommand. A command that needs the broker or the
// logger is built from the App the tree resolves before any command runs:
// pass it as a CommandFunc in Options.Commands, or, inside this package,
// append it to builtinCommands from an init function in its own file (that is
// where `warren dashboard` plugs in). Use BindEnv to give a flag its
// WARREN_* variable.
//
// # Events-based commands
//
// RabbitMQ offers no queue listing over AMQP without the management plugin,
// and keeps no task history. `queues ls`, `tasks` and `workers` therefore read
// warren's events log (a stream every worker and client appends to): they
// replay it from --since (default one hour ago) until they have caught up
// with the moment they started reading, which they mark by appending an empty
// batch to the log. `queues ls` lists the queues seen in
// enqueue events and worker heartbeats in that window, plus any named on the
// command line, each with the broker's live figures.
//
// # Exit status
//
// 0 on success; 1 on any error, printed as one line on stderr. A worker that
// receives a second SIGINT or SIGTERM during its warm shutdown exits at once
// with status 1; the tasks it had not finished go back to their queues when
// its connection closes.
package cli
