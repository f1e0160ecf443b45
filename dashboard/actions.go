package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/dashboard/internal/history"
	"github.com/warrenjobs/warren/jobs"
)

// selection names the dead letters an action applies to: some IDs, or all.
// An empty selection is an error, never "all".
type selection struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}

const (
	maxActionBody = 1 << 20
	maxActionIDs  = 10_000
)

// parseSelection reads ids and all from a JSON body ({"ids":[...]} or
// {"all":true}) or from form fields (ids repeated, all=true), in the body or
// the query.
func parseSelection(w http.ResponseWriter, r *http.Request) (selection, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	var sel selection
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		if err := json.NewDecoder(r.Body).Decode(&sel); err != nil {
			return sel, fmt.Errorf("body: %w", err)
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return sel, fmt.Errorf("form: %w", err)
		}
		sel.IDs = r.Form["ids"]
		switch r.Form.Get("all") {
		case "", "false":
		case "true":
			sel.All = true
		default:
			return sel, errors.New(`all must be "true" or "false"`)
		}
	}
	ids := sel.IDs[:0]
	for _, id := range sel.IDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	sel.IDs = ids
	switch {
	case sel.All && len(sel.IDs) > 0:
		return sel, errors.New("give either ids or all=true, not both")
	case !sel.All && len(sel.IDs) == 0:
		return sel, errors.New("no dead letters selected: give ids, or all=true")
	case len(sel.IDs) > maxActionIDs:
		return sel, fmt.Errorf("at most %d ids per request", maxActionIDs)
	}
	return sel, nil
}

// brokerIDs is the broker's form of a selection: nil means all.
func (s selection) brokerIDs() []string {
	if s.All {
		return nil
	}
	return s.IDs
}

// purge removes the queue's ready tasks.
func (d *Dashboard) purge(ctx context.Context, queue string) (int, error) {
	defer d.stats.forget(queue)
	n, err := d.broker.Purge(ctx, queue)
	if err != nil {
		return 0, err
	}
	d.log.Info("dashboard: queue purged", "queue", queue, "count", n)
	return n, nil
}

// retryDead sends dead letters back to their work queue, then records an
// enqueued event for each task it knows, so every dashboard shows them
// queued again (not dead) until a worker picks them up.
func (d *Dashboard) retryDead(ctx context.Context, queue string, sel selection) (int, error) {
	defer d.stats.forget(queue)
	known := d.knownDead(queue, sel)
	n, err := d.broker.RetryDead(ctx, queue, sel.brokerIDs())
	if err != nil {
		return 0, err
	}
	d.log.Info("dashboard: dead letters retried", "queue", queue, "count", n, "all", sel.All)
	if n > 0 && len(known) > 0 {
		now := d.now()
		events := make([]jobs.Event, len(known))
		for i, t := range known {
			events[i] = jobs.Event{Type: jobs.EventEnqueued, Time: now, TaskID: t.ID, Kind: t.Kind, Queue: queue, Attempt: t.AttemptCount}
		}
		if batch, err := json.Marshal(events); err == nil {
			if err := d.broker.AppendEvents(ctx, batch); err != nil {
				d.log.Warn("dashboard: could not record retried tasks as enqueued", "queue", queue, "err", err)
			}
		}
	}
	return n, nil
}

// knownDead returns the selected tasks that the history holds as dead.
func (d *Dashboard) knownDead(queue string, sel selection) []api.Task {
	now := d.now()
	if sel.All {
		return d.store.Tasks(history.Filter{Queue: queue, State: api.StateDead, Limit: maxActionIDs}, now).Tasks
	}
	var out []api.Task
	for _, id := range sel.IDs {
		if t, ok := d.store.Task(id, now); ok && t.State == api.StateDead && t.Queue == queue {
			t.Args, t.Attempts = nil, nil
			out = append(out, t)
		}
	}
	return out
}

// deleteDead removes dead letters for good.
func (d *Dashboard) deleteDead(ctx context.Context, queue string, sel selection) (int, error) {
	defer d.stats.forget(queue)
	n, err := d.broker.DeleteDead(ctx, queue, sel.brokerIDs())
	if err != nil {
		return 0, err
	}
	d.log.Info("dashboard: dead letters deleted", "queue", queue, "count", n, "all", sel.All)
	return n, nil
}

// brokerStatus maps a broker error to an HTTP status.
func brokerStatus(err error) int {
	switch {
	case errors.Is(err, broker.ErrQueueNotFound):
		return http.StatusNotFound
	case errors.Is(err, broker.ErrInvalidQueueName):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// actionTimeout bounds a mutation: retrying many dead letters republishes
// each with confirms.
func (d *Dashboard) actionCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), max(d.cfg.BrokerTimeout, 60*time.Second))
}
