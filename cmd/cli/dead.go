package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/broker"
)

// DeadLetter is a dead letter in `dead ls --json` and `dead show --json`.
// Stack is only in `dead show`.
type DeadLetter struct {
	ID         string            `json:"id"`
	Kind       string            `json:"kind"`
	Queue      string            `json:"queue"`
	Args       json.RawMessage   `json:"args"`
	Attempt    int               `json:"attempt"`
	MaxRetries int               `json:"max_retries"` // -1: the worker's default
	EnqueuedAt time.Time         `json:"enqueued_at"`
	FailedAt   *time.Time        `json:"failed_at"`
	DeadAt     time.Time         `json:"dead_at"`
	DeadReason string            `json:"dead_reason"`
	LastError  string            `json:"last_error"`
	Stack      string            `json:"stack,omitempty"`
	Meta       map[string]string `json:"meta,omitempty"`
}

func deadLetter(m *broker.Message, withStack bool) DeadLetter {
	d := DeadLetter{
		ID: m.ID, Kind: m.Kind, Queue: m.Queue, Attempt: m.Attempt, MaxRetries: m.MaxRetries,
		EnqueuedAt: m.EnqueuedAt, DeadAt: m.DeadAt, DeadReason: m.DeadReason, LastError: m.LastError, Meta: m.Meta,
	}
	if json.Valid(m.Args) {
		d.Args = json.RawMessage(m.Args)
	} else {
		// A malformed message's body, kept readable as a JSON string.
		d.Args, _ = json.Marshal(string(m.Args))
	}
	if !m.FailedAt.IsZero() {
		t := m.FailedAt
		d.FailedAt = &t
	}
	if withStack {
		d.Stack = m.Stack
	}
	return d
}

func newDeadCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead",
		Short: "Browse, retry and purge dead letters",
		Long: `Browse, retry and purge a queue's dead letters: the tasks that failed past
their retries, or could not be handled at all. Browsing never removes or
reorders a dead letter.`,
	}
	cmd.AddCommand(newDeadLsCommand(app), newDeadShowCommand(app), newDeadRetryCommand(app), newDeadPurgeCommand(app))
	return cmd
}

// allDead browses every dead letter of q, checking that q exists.
func allDead(ctx context.Context, b broker.Broker, q string) ([]*broker.Message, error) {
	st, err := queueStats(ctx, b, q)
	if err != nil {
		return nil, err
	}
	if st.Dead == 0 {
		return nil, nil
	}
	msgs, err := b.Dead(ctx, q, st.Dead)
	if err != nil {
		return nil, fmt.Errorf("browse dead letters of %q: %w", q, err)
	}
	return msgs, nil
}

func newDeadLsCommand(app *App) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "ls QUEUE",
		Short: "List a queue's dead letters, oldest first",
		Example: `  warren dead ls emails
  warren dead ls emails --limit 0 --json   # every dead letter`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := args[0]
			if err := broker.ValidateQueueName(q); err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("invalid --limit %d: must not be negative", limit)
			}
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				st, err := queueStats(ctx, b, q)
				if err != nil {
					return err
				}
				n := st.Dead
				if limit > 0 {
					n = min(n, limit)
				}
				var msgs []*broker.Message
				if n > 0 {
					if msgs, err = b.Dead(ctx, q, n); err != nil {
						return fmt.Errorf("browse dead letters of %q: %w", q, err)
					}
				}
				rows := make([]DeadLetter, len(msgs))
				for i, m := range msgs {
					rows[i] = deadLetter(m, false)
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), rows)
				}
				t := newTable(cmd.OutOrStdout(), "ID", "KIND", "ATTEMPTS", "DEAD", "REASON", "LAST ERROR")
				now := time.Now()
				for _, r := range rows {
					t.row(r.ID, r.Kind, strconv.Itoa(r.Attempt), since(r.DeadAt, now), truncate(r.DeadReason, 40), truncate(r.LastError, 60))
				}
				if err := t.flush(); err != nil {
					return err
				}
				if len(rows) < st.Dead {
					fmt.Fprintf(cmd.ErrOrStderr(), "showing %d of %d dead letters (--limit 0 shows all)\n", len(rows), st.Dead)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many (0: all)")
	return cmd
}

func newDeadShowCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "show QUEUE ID",
		Short:   "Show one dead letter in full: args, error, stack",
		Example: `  warren dead show emails 0b6c7a52-3f5e-4c1e-9a8e-2f1d4b7c9e10`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, id := args[0], args[1]
			if err := broker.ValidateQueueName(q); err != nil {
				return err
			}
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				msgs, err := allDead(ctx, b, q)
				if err != nil {
					return err
				}
				for _, m := range msgs {
					if m.ID == id {
						d := deadLetter(m, true)
						if asJSON {
							return writeJSON(cmd.OutOrStdout(), d)
						}
						return printDeadLetter(cmd.OutOrStdout(), d)
					}
				}
				return fmt.Errorf("dead letter %q not found in queue %q", id, q)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printDeadLetter(w io.Writer, d DeadLetter) error {
	t := newTable(w, "FIELD", "VALUE")
	t.row("id", d.ID)
	t.row("kind", d.Kind)
	t.row("queue", d.Queue)
	t.row("args", string(d.Args))
	t.row("attempts", strconv.Itoa(d.Attempt))
	t.row("enqueued", stamp(d.EnqueuedAt))
	if d.FailedAt != nil {
		t.row("failed", stamp(*d.FailedAt))
	}
	t.row("dead", stamp(d.DeadAt))
	t.row("reason", d.DeadReason)
	t.row("last error", d.LastError)
	for k, v := range d.Meta {
		t.row("meta."+k, v)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if d.Stack != "" {
		_, err := fmt.Fprintf(w, "\nstack:\n%s\n", d.Stack)
		return err
	}
	return nil
}

func newDeadRetryCommand(app *App) *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "retry QUEUE (ID... | --all)",
		Short: "Move dead letters back to their queue with a fresh retry budget",
		Long: `Move dead letters back to their queue with a fresh retry budget. Each is
republished, and removed from the dead-letter queue only once RabbitMQ has
confirmed the republish. Its attempt number keeps counting. Every ID must name
a dead letter of the queue, else nothing is retried.`,
		Example: `  warren dead retry emails 0b6c7a52-3f5e-4c1e-9a8e-2f1d4b7c9e10
  warren dead retry emails --all`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, ids := args[0], args[1:]
			if err := broker.ValidateQueueName(q); err != nil {
				return err
			}
			switch {
			case all && len(ids) > 0:
				return errors.New("give task IDs or --all, not both")
			case !all && len(ids) == 0:
				return errors.New("give the task IDs to retry, or --all")
			}
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				if err := checkDeadIDs(ctx, b, q, ids); err != nil {
					return err
				}
				if all {
					ids = nil
				}
				n, err := b.RetryDead(ctx, q, ids)
				if err != nil {
					return fmt.Errorf("retry dead letters of %q (%d moved before the error): %w", q, n, err)
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"queue": q, "retried": n})
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "retried %d dead letters of queue %s\n", n, q)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "retry every dead letter of the queue")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {queue, retried}")
	return cmd
}

// checkDeadIDs makes sure q exists and every id names one of its dead
// letters, so that a typo retries or removes nothing.
func checkDeadIDs(ctx context.Context, b broker.Broker, q string, ids []string) error {
	if len(ids) == 0 {
		_, err := queueStats(ctx, b, q)
		return err
	}
	msgs, err := allDead(ctx, b, q)
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		have[m.ID] = true
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not dead letters of queue %q: %s; nothing done", q, quoteList(missing))
	}
	return nil
}

func newDeadPurgeCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "purge QUEUE [ID...]",
		Short: "Delete a queue's dead letters (all, or the given IDs)",
		Example: `  warren dead purge emails
  warren dead purge emails 0b6c7a52-3f5e-4c1e-9a8e-2f1d4b7c9e10`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, ids := args[0], args[1:]
			if err := broker.ValidateQueueName(q); err != nil {
				return err
			}
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				if err := checkDeadIDs(ctx, b, q, ids); err != nil {
					return err
				}
				if len(ids) == 0 {
					ids = nil
				}
				n, err := b.DeleteDead(ctx, q, ids)
				if err != nil {
					return fmt.Errorf("delete dead letters of %q (%d deleted before the error): %w", q, n, err)
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"queue": q, "deleted": n})
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted %d dead letters of queue %s\n", n, q)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {queue, deleted}")
	return cmd
}
