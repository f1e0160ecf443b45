// Command faultworker is the worker and producer process of warren's
// fault-injection suite (package jobs/internal/faults): the tests start it,
// SIGKILL it, SIGTERM it, and read what it recorded.
//
//	faultworker work    -url URL -queue Q -record FILE [-concurrency 8 -prefetch 16 -mode normal|poison|panic ...]
//	faultworker produce -url URL -queue Q -ledger FILE -n 20000 [-batch 100 -prefix t- ...]
//
// work runs a jobs.Runner on queue Q until SIGTERM or SIGINT (a warm
// shutdown) and appends a line per attempt to the record file (flag -record,
// or $WARREN_FAULTS_RECORD). produce enqueues n tasks and appends a line per
// outcome to the ledger. The AMQP URL defaults to $WARREN_AMQP_URL. Exit
// status 0 means a clean stop, 2 bad flags, 1 anything else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/warrenjobs/warren/jobs/internal/faults"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	var err error
	switch os.Args[1] {
	case "work":
		err = work(ctx, log, os.Args[2:])
	case "produce":
		err = produce(ctx, log, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		log.Error("faultworker: exiting", "err", err)
		os.Exit(1)
	}
	log.Info("faultworker: clean exit", "pid", os.Getpid())
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: faultworker work|produce [flags]   (faultworker work -h for the flags)")
	os.Exit(2)
}

func connFlags(fs *flag.FlagSet) *faults.ConnConfig {
	c := &faults.ConnConfig{}
	fs.StringVar(&c.URL, "url", os.Getenv("WARREN_AMQP_URL"), "AMQP URL (default $WARREN_AMQP_URL)")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 0, "AMQP heartbeat (0: warren's default)")
	fs.DurationVar(&c.ReconnectInterval, "reconnect", 250*time.Millisecond, "pause between reconnection attempts")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", 0, "bound of one connection attempt (0: warren's default)")
	fs.DurationVar(&c.OpenTimeout, "open-timeout", time.Minute, "how long to retry the first connection")
	return c
}

func work(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("faultworker work", flag.ExitOnError)
	conn := connFlags(fs)
	cfg := faults.WorkerConfig{Logger: log}
	var mode string
	fs.StringVar(&cfg.Queue, "queue", "", "queue to consume (required)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 8, "tasks run at once")
	fs.IntVar(&cfg.Prefetch, "prefetch", 16, "unsettled deliveries held")
	fs.StringVar(&mode, "mode", "normal", "normal (as each task says), poison (every attempt fails) or panic (every attempt panics)")
	fs.DurationVar(&cfg.Sleep, "sleep", 0, "extra work time per task")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "warm shutdown bound")
	fs.IntVar(&cfg.MaxPayloadBytes, "max-payload", 0, "largest task args accepted (0: warren's default, 1 MiB)")
	fs.StringVar(&cfg.Record, "record", os.Getenv("WARREN_FAULTS_RECORD"), "record file, appended (default $WARREN_FAULTS_RECORD)")
	fs.StringVar(&cfg.Stats, "stats", "", "file to append goroutine and open-file counts to")
	fs.DurationVar(&cfg.StatsInterval, "stats-interval", time.Second, "how often to write -stats")
	fs.Parse(args)
	cfg.Conn = *conn
	var err error
	if cfg.Mode, err = faults.ParseMode(mode); err != nil {
		return err
	}
	if cfg.Queue == "" || cfg.Record == "" || cfg.Conn.URL == "" {
		return errors.New("-queue, -record and -url are required")
	}
	return faults.RunWorker(ctx, cfg)
}

func produce(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("faultworker produce", flag.ExitOnError)
	conn := connFlags(fs)
	cfg := faults.ProducerConfig{Logger: log}
	fs.StringVar(&cfg.Queue, "queue", "", "queue to enqueue to (required)")
	fs.StringVar(&cfg.IDPrefix, "prefix", "t-", "task ID prefix")
	fs.IntVar(&cfg.First, "first", 0, "first sequence number")
	fs.IntVar(&cfg.N, "n", 1000, "tasks to enqueue")
	fs.IntVar(&cfg.Batch, "batch", 100, "tasks per EnqueueMany")
	fs.IntVar(&cfg.Rate, "rate", 0, "tasks per second at most (0: unbounded)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "deadline of one EnqueueMany")
	fs.IntVar(&cfg.SleepMS, "task-sleep-ms", 0, "work time of each task")
	fs.StringVar(&cfg.Ledger, "ledger", "", "ledger file, appended (required)")
	fs.Parse(args)
	cfg.Conn = *conn
	if cfg.Queue == "" || cfg.Ledger == "" || cfg.Conn.URL == "" {
		return errors.New("-queue, -ledger and -url are required")
	}
	return faults.RunProducer(ctx, cfg)
}
