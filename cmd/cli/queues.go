package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/cmd/cli/internal/history"
)

// queueStats returns a queue's figures, or a "queue Q not found" error.
func queueStats(ctx context.Context, b broker.Broker, q string) (broker.QueueStats, error) {
	st, err := b.Stats(ctx, q)
	if errors.Is(err, broker.ErrQueueNotFound) {
		return st, fmt.Errorf("queue %q not found", q)
	}
	if err != nil {
		return st, fmt.Errorf("queue %q: %w", q, err)
	}
	return st, nil
}

// QueueInfo is a queue's row in `queues ls --json` and `queues inspect --json`.
// Ready, Consumers and Dead come from the broker; Running, Delayed and
// OldestReadyAgeSeconds are estimated from the events log of the --since
// window.
type QueueInfo struct {
	Queue                 string   `json:"queue"`
	Ready                 int      `json:"ready"`
	Consumers             int      `json:"consumers"`
	Dead                  int      `json:"dead"`
	Running               int      `json:"running"`
	Delayed               int      `json:"delayed"`
	OldestReadyAgeSeconds *float64 `json:"oldest_ready_age_seconds"`
}

func queueInfo(st broker.QueueStats, snap *history.Snapshot, now time.Time) QueueInfo {
	qi := QueueInfo{Queue: st.Queue, Ready: st.Ready, Consumers: st.Consumers, Dead: st.Dead}
	fig := snap.Queue(st.Queue, now)
	qi.Running, qi.Delayed = fig.Running, fig.Delayed
	if st.Ready > 0 && !fig.OldestReady.IsZero() {
		a := now.Sub(fig.OldestReady).Seconds()
		qi.OldestReadyAgeSeconds = &a
	}
	return qi
}

func newQueuesCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "List, inspect and purge queues",
	}
	cmd.AddCommand(newQueuesLsCommand(app), newQueuesInspectCommand(app), newQueuesPurgeCommand(app))
	return cmd
}

func newQueuesLsCommand(app *App) *cobra.Command {
	var asJSON bool
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "ls [QUEUE...]",
		Short: "List the queues in use, with their figures",
		Long: `List the queues in use, with their figures.

RabbitMQ cannot list queues over AMQP without the management plugin, so the
list is derived from warren's events log: every queue named by an enqueue
event or a worker heartbeat within --since, plus the queues given as
arguments. Queues that no longer exist are left out.`,
		Example: `  warren queues ls
  warren queues ls emails reports --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, q := range args {
				if err := broker.ValidateQueueName(q); err != nil {
					return err
				}
			}
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				snap, err := history.Load(ctx, b, time.Now().Add(-window), nil)
				if err != nil {
					return err
				}
				names := map[string]bool{}
				for q := range snap.Queues {
					if broker.ValidateQueueName(q) == nil {
						names[q] = true
					}
				}
				for _, q := range args {
					names[q] = true
				}
				sorted := make([]string, 0, len(names))
				for q := range names {
					sorted = append(sorted, q)
				}
				sort.Strings(sorted)
				now := time.Now()
				rows := []QueueInfo{}
				for _, q := range sorted {
					st, err := b.Stats(ctx, q)
					if errors.Is(err, broker.ErrQueueNotFound) {
						continue
					}
					if err != nil {
						return fmt.Errorf("queue %q: %w", q, err)
					}
					rows = append(rows, queueInfo(st, snap, now))
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), rows)
				}
				t := newTable(cmd.OutOrStdout(), "QUEUE", "READY", "RUNNING", "DELAYED", "DEAD", "CONSUMERS", "OLDEST READY")
				for _, r := range rows {
					t.row(r.Queue, strconv.Itoa(r.Ready), strconv.Itoa(r.Running), strconv.Itoa(r.Delayed),
						strconv.Itoa(r.Dead), strconv.Itoa(r.Consumers), oldest(r.OldestReadyAgeSeconds))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&window, "since", time.Hour, "how far back the events log is read")
	return cmd
}

func oldest(secs *float64) string {
	if secs == nil {
		return "-"
	}
	return age(time.Duration(*secs * float64(time.Second)))
}

func newQueuesInspectCommand(app *App) *cobra.Command {
	var asJSON bool
	var window time.Duration
	cmd := &cobra.Command{
		Use:     "inspect QUEUE",
		Short:   "Show one queue's figures",
		Example: `  warren queues inspect emails --json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := args[0]
			if err := broker.ValidateQueueName(q); err != nil {
				return err
			}
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				st, err := queueStats(ctx, b, q)
				if err != nil {
					return err
				}
				snap, err := history.Load(ctx, b, time.Now().Add(-window), &history.Options{Needle: history.Needle(q)})
				if err != nil {
					return err
				}
				info := queueInfo(st, snap, time.Now())
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), info)
				}
				t := newTable(cmd.OutOrStdout(), "FIELD", "VALUE")
				t.row("queue", info.Queue)
				t.row("ready", strconv.Itoa(info.Ready))
				t.row("running", strconv.Itoa(info.Running)+" (from events)")
				t.row("delayed", strconv.Itoa(info.Delayed)+" (from events)")
				t.row("dead", strconv.Itoa(info.Dead))
				t.row("consumers", strconv.Itoa(info.Consumers))
				t.row("oldest ready", oldest(info.OldestReadyAgeSeconds)+" (from events)")
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&window, "since", time.Hour, "how far back the events log is read for the estimated figures")
	return cmd
}

func newQueuesPurgeCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "purge QUEUE",
		Short: "Remove every ready task from a queue (not its dead letters)",
		Long: `Remove every ready task from a queue. Dead letters stay (see dead purge);
tasks running or waiting out a delay are not ready and are not removed.`,
		Example: `  warren queues purge emails`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := args[0]
			if err := broker.ValidateQueueName(q); err != nil {
				return err
			}
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				if _, err := queueStats(ctx, b, q); err != nil {
					return err
				}
				n, err := b.Purge(ctx, q)
				if err != nil {
					return fmt.Errorf("purge queue %q: %w", q, err)
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"queue": q, "purged": n})
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "purged %d tasks from queue %s\n", n, q)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {queue, purged}")
	return cmd
}
