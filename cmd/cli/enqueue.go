package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

// enqueueChunk is how many tasks one pipelined EnqueueMany call carries.
const enqueueChunk = 5000

// maxArgsBytes caps args read from the command line or stdin.
const maxArgsBytes = 1 << 20

type enqueueFlags struct {
	queue      string
	count      int
	delay      time.Duration
	at         string
	maxRetries int
	timeout    time.Duration
	retryDelay time.Duration
	quiet      bool
	json       bool
}

func newEnqueueCommand(app *App) *cobra.Command {
	var f enqueueFlags
	cmd := &cobra.Command{
		Use:   "enqueue KIND [JSON-ARGS|-]",
		Short: "Enqueue tasks of a registered kind",
		Long: `Enqueue tasks of a registered kind, and print their IDs once RabbitMQ has
confirmed every one. JSON-ARGS defaults to {}; "-" reads them from stdin. The
args are checked against the kind's type first (unknown fields are errors), so
nothing is enqueued when they are wrong.`,
		Example: `  warren enqueue demo.echo '{"msg":"hello"}'
  warren enqueue demo.noop --count 1000 --queue bulk --quiet
  echo '{"ms":500}' | warren enqueue demo.sleep - --delay 1m
  warren enqueue demo.fail '{"times":5}' --max-retries 2 --retry-delay 1s`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEnqueue(cmd, app, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.queue, "queue", "", "queue to enqueue on (default: the kind's, else \"default\")")
	fl.IntVar(&f.count, "count", 1, "how many copies to enqueue (confirms pipelined)")
	fl.DurationVar(&f.delay, "delay", 0, "run no earlier than this long from now, e.g. 90s")
	fl.StringVar(&f.at, "at", "", "run no earlier than this time (RFC 3339, e.g. 2030-01-02T15:04:05Z)")
	fl.IntVar(&f.maxRetries, "max-retries", 0, "retries after a failed first attempt (0: none; default: the worker's)")
	fl.DurationVar(&f.timeout, "timeout", 0, "time limit per attempt (default: the worker's)")
	fl.DurationVar(&f.retryDelay, "retry-delay", 0, "fixed delay between attempts, instead of the backoff")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the number of tasks enqueued")
	fl.BoolVar(&f.json, "json", false, "print the task IDs as a JSON array")
	return cmd
}

func runEnqueue(cmd *cobra.Command, app *App, f enqueueFlags, args []string) error {
	kind := args[0]
	raw := []byte("{}")
	if len(args) == 2 {
		raw = []byte(args[1])
		if args[1] == "-" {
			var err error
			if raw, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxArgsBytes+1)); err != nil {
				return fmt.Errorf("read args from stdin: %w", err)
			}
			if len(raw) > maxArgsBytes {
				return fmt.Errorf("args on stdin exceed %d bytes", maxArgsBytes)
			}
		}
	}

	// Check everything before connecting: nothing is enqueued on bad input.
	if !slices.Contains(app.Workers.Kinds(), kind) {
		return fmt.Errorf("unknown kind %q; registered kinds: %s", kind, quoteList(app.Workers.Kinds()))
	}
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		return fmt.Errorf("invalid JSON args for kind %q: %v", kind, err)
	}
	jobArgs, err := app.Workers.DecodeArgs(kind, raw)
	if err != nil {
		return fmt.Errorf("invalid %v", err)
	}
	opts, err := f.opts(cmd)
	if err != nil {
		return err
	}
	if f.count < 1 {
		return fmt.Errorf("invalid --count %d: must be at least 1", f.count)
	}
	if f.quiet && f.json {
		return errors.New("--quiet and --json conflict: choose one")
	}

	ctx := cmd.Context()
	b, err := app.OpenBroker(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	client, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: app.Logger()})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = client.Close(cctx)
	}()

	var ids []string
	for len(ids) < f.count {
		n := min(enqueueChunk, f.count-len(ids))
		params := make([]jobs.EnqueueParams, n)
		for i := range params {
			params[i] = jobs.EnqueueParams{Args: jobArgs, Opts: opts}
		}
		got, err := client.EnqueueMany(ctx, params)
		if err != nil {
			if len(ids) > 0 {
				printIDs(cmd.OutOrStdout(), f, ids)
				return fmt.Errorf("%d of %d tasks enqueued (IDs above); the rest failed: %w", len(ids), f.count, err)
			}
			return err
		}
		ids = append(ids, got...)
	}
	return printIDs(cmd.OutOrStdout(), f, ids)
}

func printIDs(w io.Writer, f enqueueFlags, ids []string) error {
	switch {
	case f.quiet:
		_, err := fmt.Fprintln(w, len(ids))
		return err
	case f.json:
		return writeJSON(w, ids)
	default:
		_, err := fmt.Fprintln(w, strings.Join(ids, "\n"))
		return err
	}
}

// opts turns the flags into EnqueueOpts, rejecting bad values and conflicts.
func (f enqueueFlags) opts(cmd *cobra.Command) (*jobs.EnqueueOpts, error) {
	o := &jobs.EnqueueOpts{Queue: f.queue, Delay: f.delay, Timeout: f.timeout, RetryDelay: f.retryDelay}
	if f.queue != "" {
		if err := broker.ValidateQueueName(f.queue); err != nil {
			return nil, fmt.Errorf("invalid --queue: %w", err)
		}
	}
	if f.delay < 0 {
		return nil, fmt.Errorf("invalid --delay %s: must not be negative", f.delay)
	}
	if f.at != "" {
		if cmd.Flags().Changed("delay") {
			return nil, errors.New("--delay and --at conflict: give one")
		}
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return nil, fmt.Errorf("invalid --at %q: use RFC 3339, e.g. 2030-01-02T15:04:05Z", f.at)
		}
		o.RunAt = t
	}
	if cmd.Flags().Changed("max-retries") {
		switch {
		case f.maxRetries < 0:
			return nil, fmt.Errorf("invalid --max-retries %d: must not be negative", f.maxRetries)
		case f.maxRetries == 0:
			o.MaxRetries = jobs.NoRetries
		default:
			o.MaxRetries = f.maxRetries
		}
	}
	if f.timeout < 0 {
		return nil, fmt.Errorf("invalid --timeout %s: must not be negative", f.timeout)
	}
	if f.retryDelay < 0 {
		return nil, fmt.Errorf("invalid --retry-delay %s: must not be negative", f.retryDelay)
	}
	return o, nil
}
