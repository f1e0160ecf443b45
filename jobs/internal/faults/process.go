package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/jobs"
)

// ConnConfig is how the faultworker program reaches RabbitMQ.
type ConnConfig struct {
	URL               string
	Heartbeat         time.Duration // 0: amqp.Config's default
	ReconnectInterval time.Duration // 0: amqp.Config's default
	DialTimeout       time.Duration // 0: amqp.Config's default
	// OpenTimeout bounds the first connection, retried every second (a
	// worker restarted while the broker is down waits for it, as a
	// supervised worker would).
	OpenTimeout time.Duration
}

func (c ConnConfig) open(ctx context.Context, log *slog.Logger) (*amqp.Broker, error) {
	cfg := amqp.Config{
		URL: c.URL, Logger: log, Heartbeat: c.Heartbeat,
		ReconnectInterval: c.ReconnectInterval, DialTimeout: c.DialTimeout,
		ConnectionName: fmt.Sprintf("faultworker %d", os.Getpid()),
	}
	ctx, cancel := context.WithTimeout(ctx, c.OpenTimeout)
	defer cancel()
	for {
		b, err := amqp.Open(ctx, cfg)
		if err == nil {
			return b, nil
		}
		log.Warn("faultworker: connect failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("faultworker: connect: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// WorkerConfig configures RunWorker.
type WorkerConfig struct {
	Conn            ConnConfig
	Queue           string
	Concurrency     int
	Prefetch        int
	Mode            Mode
	Sleep           time.Duration // extra work time per task
	ShutdownTimeout time.Duration
	MaxPayloadBytes int
	Record          string // record file, appended
	Stats           string // if set, a line "<unix-ms> <goroutines> <open-fds>" is appended every StatsInterval
	StatsInterval   time.Duration
	Logger          *slog.Logger
}

// RunWorker runs a jobs.Runner executing Tasks of one queue until ctx is
// cancelled (a warm shutdown), and records every attempt.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	rec, err := OpenRecorder(cfg.Record)
	if err != nil {
		return err
	}
	defer rec.Close()
	b, err := cfg.Conn.open(ctx, cfg.Logger)
	if err != nil {
		return err
	}
	defer b.Close()

	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, &TaskWorker{Rec: rec, Mode: cfg.Mode, Sleep: cfg.Sleep})
	runner, err := jobs.NewRunner(b, workers, &jobs.RunnerConfig{
		Queues:          map[string]int{cfg.Queue: 1},
		Concurrency:     cfg.Concurrency,
		Prefetch:        cfg.Prefetch,
		ShutdownTimeout: cfg.ShutdownTimeout,
		MaxPayloadBytes: cfg.MaxPayloadBytes,
		Logger:          cfg.Logger,
	})
	if err != nil {
		return err
	}
	if cfg.Stats != "" {
		go writeStats(ctx, cfg.Stats, cfg.StatsInterval)
		go dumpGoroutinesOnSignal(ctx, cfg.Stats+".goroutines")
	}
	return runner.Run(ctx)
}

// writeStats appends "<unix-ms> <goroutines> <open-fds>" lines to path.
func writeStats(ctx context.Context, path string, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		fds := -1
		if es, err := os.ReadDir("/proc/self/fd"); err == nil {
			fds = len(es) - 1 // minus the one ReadDir itself held
		}
		fmt.Fprintf(f, "%d %d %d\n", time.Now().UnixMilli(), runtime.NumGoroutine(), fds)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ProducerConfig configures RunProducer.
type ProducerConfig struct {
	Conn     ConnConfig
	Queue    string
	IDPrefix string // task IDs are IDPrefix + zero-padded sequence number
	First    int    // first sequence number
	N        int    // tasks to enqueue
	Batch    int    // tasks per EnqueueMany (1: Enqueue)
	Rate     int    // tasks per second at most; 0: as fast as confirms allow
	Timeout  time.Duration
	SleepMS  int // the tasks' work time
	Ledger   string
	Logger   *slog.Logger
}

// RunProducer enqueues N Tasks and records each outcome in the ledger
// (OpEnqueued or OpEnqueueError). It returns an error only when it could not
// run at all; failed enqueues are recorded, not returned.
func RunProducer(ctx context.Context, cfg ProducerConfig) error {
	ledger, err := OpenRecorder(cfg.Ledger)
	if err != nil {
		return err
	}
	defer ledger.Close()
	b, err := cfg.Conn.open(ctx, cfg.Logger)
	if err != nil {
		return err
	}
	defer b.Close()
	client, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: cfg.Logger})
	if err != nil {
		return err
	}
	defer client.Close(context.Background())
	p := &Producer{Client: client, Ledger: ledger, Queue: cfg.Queue, Timeout: cfg.Timeout}
	batch := max(cfg.Batch, 1)
	start := time.Now()
	for seq := cfg.First; seq < cfg.First+cfg.N; seq += batch {
		if ctx.Err() != nil {
			return nil
		}
		n := min(batch, cfg.First+cfg.N-seq)
		tasks := make([]Task, n)
		for i := range tasks {
			tasks[i] = Task{Seq: seq + i, SleepMS: cfg.SleepMS}
		}
		p.Enqueue(ctx, cfg.IDPrefix, tasks, nil)
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(seq+n-cfg.First) * time.Second / time.Duration(cfg.Rate))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
	}
	return nil
}

// Producer enqueues Tasks with chosen IDs and records each outcome.
type Producer struct {
	Client  *jobs.Client
	Ledger  *Recorder
	Queue   string
	Timeout time.Duration // per EnqueueMany call; 0: 30 s
}

// TaskID is the ID of task seq under prefix.
func TaskID(prefix string, seq int) string { return fmt.Sprintf("%s%07d", prefix, seq) }

// Enqueue enqueues tasks in one EnqueueMany call, their IDs TaskID(prefix,
// Seq), and records which were confirmed and which not. opts (may be nil) is
// copied for each task. It returns the IDs confirmed and the call's error.
func (p *Producer) Enqueue(ctx context.Context, prefix string, tasks []Task, opts *jobs.EnqueueOpts) ([]string, error) {
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	params := make([]jobs.EnqueueParams, len(tasks))
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		o := jobs.EnqueueOpts{}
		if opts != nil {
			o = *opts
		}
		o.Queue, o.ID = p.Queue, TaskID(prefix, t.Seq)
		ids[i] = o.ID
		params[i] = jobs.EnqueueParams{Args: t, Opts: &o}
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	_, err := p.Client.EnqueueMany(cctx, params)
	cancel()
	failed := FailedIDs(err, ids)
	var ok []string
	for _, id := range ids {
		op := OpEnqueued
		if failed[id] {
			op = OpEnqueueError
		} else {
			ok = append(ok, id)
		}
		if rerr := p.Ledger.Record(op, id, 0); rerr != nil {
			return ok, errors.Join(err, rerr)
		}
	}
	return ok, err
}

// FailedIDs returns the IDs an EnqueueMany error names as unconfirmed
// (*broker.PublishError); when the error names none, all of ids failed.
func FailedIDs(err error, ids []string) map[string]bool {
	failed := map[string]bool{}
	if err == nil {
		return failed
	}
	var walk func(error)
	walk = func(e error) {
		if pe, ok := e.(*broker.PublishError); ok {
			failed[pe.ID] = true
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	if len(failed) == 0 {
		for _, id := range ids {
			failed[id] = true
		}
	}
	return failed
}

// dumpGoroutinesOnSignal writes the goroutine profile (stacks with counts,
// pprof debug=1) to path on every SIGUSR1, replacing the previous one, so
// that a test can tell which goroutines a leak is made of.
func dumpGoroutinesOnSignal(ctx context.Context, path string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	defer signal.Stop(sig)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			tmp := path + ".tmp"
			if os.WriteFile(tmp, buf.Bytes(), 0o644) == nil {
				_ = os.Rename(tmp, path)
			}
		}
	}
}
