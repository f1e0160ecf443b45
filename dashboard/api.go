package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/dashboard/internal/history"
	"github.com/warrenjobs/warren/dashboard/internal/view"
)

const maxTaskLimit = 1000

func (d *Dashboard) apiQueues(w http.ResponseWriter, r *http.Request) {
	qs, _ := d.queues(r.Context(), d.now())
	writeJSON(w, http.StatusOK, api.Queues{Queues: qs, Replaying: d.Replaying()})
}

func (d *Dashboard) apiQueue(w http.ResponseWriter, r *http.Request) {
	name, ok := queueParam(w, r)
	if !ok {
		return
	}
	q, found := d.queue(r.Context(), name, d.now())
	if !found {
		writeError(w, http.StatusNotFound, "no such queue")
		return
	}
	writeJSON(w, http.StatusOK, q)
}

func (d *Dashboard) apiDead(w http.ResponseWriter, r *http.Request) {
	name, ok := queueParam(w, r)
	if !ok {
		return
	}
	limit, err := intParam(r, "limit", d.cfg.DeadLimit, maxDeadLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	letters, err := d.deadLetters(r.Context(), name, limit)
	if err != nil {
		writeError(w, brokerStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, letters)
}

func (d *Dashboard) apiWorkers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Workers{Workers: d.store.Workers(d.now())})
}

func (d *Dashboard) apiTasks(w http.ResponseWriter, r *http.Request) {
	f, err := taskFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, d.store.Tasks(f, d.now()))
}

func (d *Dashboard) apiTask(w http.ResponseWriter, r *http.Request) {
	t, ok := d.store.Task(r.PathValue("id"), d.now())
	if !ok {
		writeError(w, http.StatusNotFound, "task not in the dashboard's history")
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (d *Dashboard) apiPurge(w http.ResponseWriter, r *http.Request) {
	name, ok := queueParam(w, r)
	if !ok {
		return
	}
	ctx, cancel := d.actionCtx(r)
	defer cancel()
	n, err := d.purge(ctx, name)
	if err != nil {
		writeError(w, brokerStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.ActionResult{Queue: name, Action: "purge", Count: n})
}

func (d *Dashboard) apiDeadAction(w http.ResponseWriter, r *http.Request) {
	name, ok := queueParam(w, r)
	if !ok {
		return
	}
	sel, err := parseSelection(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := d.actionCtx(r)
	defer cancel()
	action := deadAction(r)
	var n int
	if action == "retry" {
		n, err = d.retryDead(ctx, name, sel)
	} else {
		n, err = d.deleteDead(ctx, name, sel)
	}
	if err != nil {
		writeError(w, brokerStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.ActionResult{Queue: name, Action: action, Count: n})
}

func (d *Dashboard) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), min(d.cfg.BrokerTimeout, 2*time.Second))
	defer cancel()
	h := api.Health{Status: "ok", Broker: "ok", Replaying: d.Replaying()}
	status := http.StatusOK
	if err := d.broker.Ping(ctx); err != nil {
		h.Status, h.Broker, status = "unavailable", err.Error(), http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

// deadAction is "retry" or "delete", from the request path.
func deadAction(r *http.Request) string {
	if strings.HasSuffix(r.URL.Path, "/retry") {
		return "retry"
	}
	return "delete"
}

// queueParam reads and checks the {name} path value.
func queueParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if err := broker.ValidateQueueName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	return name, true
}

func intParam(r *http.Request, key string, def, most int) (int, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, fmt.Errorf("%s must be a number from 1 to %d", key, most)
	}
	return n, nil
}

// taskFilter reads the task list's query: state, queue, kind, q, limit.
func taskFilter(r *http.Request) (history.Filter, error) {
	q := r.URL.Query()
	f := history.Filter{State: q.Get("state"), Queue: q.Get("queue"), Kind: q.Get("kind"), Search: q.Get("q")}
	if f.State != "" && !slices.Contains(view.States, f.State) {
		return f, fmt.Errorf("unknown state %q: use one of %s", f.State, strings.Join(view.States, ", "))
	}
	limit, err := intParam(r, "limit", history.DefaultLimit, maxTaskLimit)
	if err != nil {
		return f, err
	}
	f.Limit = limit
	return f, nil
}

// deadLetters reads up to limit of a queue's dead letters and its count.
func (d *Dashboard) deadLetters(ctx context.Context, queue string, limit int) (api.DeadLetters, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.BrokerTimeout)
	defer cancel()
	msgs, err := d.broker.Dead(ctx, queue, limit)
	if err != nil {
		return api.DeadLetters{}, err
	}
	d.stats.forget(queue)
	st := d.stats.get(ctx, []string{queue})[queue]
	out := api.DeadLetters{Queue: queue, Total: max(st.stats.Dead, len(msgs)), DeadLetters: make([]api.DeadLetter, 0, len(msgs))}
	for _, m := range msgs {
		out.DeadLetters = append(out.DeadLetters, deadLetter(m))
	}
	return out, nil
}

// maxDeadArgs caps the payload shown per dead letter in a list.
const maxDeadArgs = 4 << 10

func deadLetter(m *broker.Message) api.DeadLetter {
	dl := api.DeadLetter{
		ID: m.ID, Kind: m.Kind, Queue: m.Queue, Attempts: m.Attempt, Reason: m.DeadReason,
		Error: m.LastError, Stack: m.Stack, Meta: m.Meta,
		EnqueuedAt: m.EnqueuedAt.UTC(), FailedAt: m.FailedAt.UTC(), DeadAt: m.DeadAt.UTC(),
	}
	switch {
	case len(m.Args) <= maxDeadArgs && json.Valid(m.Args):
		dl.Args = json.RawMessage(m.Args)
	case len(m.Args) > maxDeadArgs:
		cut := maxDeadArgs
		for cut > 0 && !utf8.RuneStart(m.Args[cut]) {
			cut--
		}
		dl.ArgsText = strings.ToValidUTF8(string(m.Args[:cut]), "\uFFFD") + " … (" + strconv.Itoa(len(m.Args)) + " bytes)"
	default:
		dl.ArgsText = strings.ToValidUTF8(string(m.Args), "\uFFFD")
	}
	return dl
}
