package dashboard

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/dashboard/internal/history"
	"github.com/warrenjobs/warren/dashboard/internal/view"
)

func (d *Dashboard) overviewPage(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Overview", "overview")
	qs, hist := d.queues(r.Context(), p.Now)
	ws := d.store.Workers(p.Now)
	m := view.Overview{Queues: qs, History: hist, Totals: sumHistory(hist, p.Now),
		WorkersOnline: countOnline(ws), WorkersTotal: len(ws)}
	d.render(w, r, http.StatusOK, view.OverviewPage(p, m), view.OverviewLive(p, m))
}

func (d *Dashboard) workersPage(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Workers", "workers")
	m := view.Workers{Workers: d.store.Workers(p.Now), OfflineFor: d.cfg.WorkerOfflineAfter, DropAfter: d.cfg.WorkerDropAfter}
	d.render(w, r, http.StatusOK, view.WorkersPage(p, m), view.WorkersLive(p, m))
}

func (d *Dashboard) tasksPage(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Tasks", "tasks")
	f, err := taskFilter(r)
	if err != nil {
		d.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	m := view.Tasks{
		Filter: view.TaskFilter{State: f.State, Queue: f.Queue, Kind: f.Kind, Search: f.Search, Limit: f.Limit},
		Result: d.store.Tasks(f, p.Now), Queues: d.queueNames(), Kinds: d.store.Kinds(),
	}
	if f.Queue != "" && !slices.Contains(m.Queues, f.Queue) {
		m.Queues = append(m.Queues, f.Queue)
	}
	d.render(w, r, http.StatusOK, view.TasksPage(p, m), view.TasksLive(p, m))
}

func (d *Dashboard) taskPage(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Task", "tasks")
	t, ok := d.store.Task(r.PathValue("id"), p.Now)
	if !ok {
		d.fail(w, r, http.StatusNotFound, "This task is not in the dashboard's history: it keeps the "+
			strconv.Itoa(d.store.Limits().MaxTasks)+" most recently updated tasks of the last "+d.cfg.Replay.String()+".")
		return
	}
	p.Title = "Task " + t.ID
	m := view.TaskDetail{Task: t}
	d.render(w, r, http.StatusOK, view.TaskPage(p, m), view.TaskLive(p, m))
}

func (d *Dashboard) queuePage(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Queue", "overview")
	name := r.PathValue("name")
	if broker.ValidateQueueName(name) != nil {
		d.fail(w, r, http.StatusNotFound, "no such queue")
		return
	}
	q, found := d.queue(r.Context(), name, p.Now)
	if !found {
		d.fail(w, r, http.StatusNotFound, "no such queue")
		return
	}
	p.Title = "Queue " + name
	m := view.QueueDetail{Queue: q, Recent: d.store.Tasks(history.Filter{Queue: name, Limit: 20}, p.Now), Flash: flashText(r.URL.Query())}
	d.render(w, r, http.StatusOK, view.QueuePage(p, m), view.QueueLive(p, m))
}

func (d *Dashboard) deadIndexPage(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Dead letters", "dead")
	qs, _ := d.queues(r.Context(), p.Now)
	slices.SortStableFunc(qs, func(a, b api.Queue) int { return b.Dead - a.Dead })
	m := view.DeadIndex{Queues: qs}
	d.render(w, r, http.StatusOK, view.DeadIndexPage(p, m), view.DeadIndexLive(p, m))
}

func (d *Dashboard) deadPage(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Dead letters", "dead")
	p.Refresh = 0 // the list holds the operator's selection: no polling
	name := r.PathValue("name")
	if broker.ValidateQueueName(name) != nil {
		d.fail(w, r, http.StatusNotFound, "no such queue")
		return
	}
	limit, err := intParam(r, "limit", d.cfg.DeadLimit, maxDeadLimit)
	if err != nil {
		d.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	letters, err := d.deadLetters(r.Context(), name, limit)
	if err != nil {
		d.fail(w, r, brokerStatus(err), "dead letters of "+name+": "+err.Error())
		return
	}
	p.Title = "Dead letters of " + name
	d.render(w, r, http.StatusOK, view.DeadLettersPage(p, view.DeadLetters{Letters: letters, Limit: limit, Flash: flashText(r.URL.Query())}), nil)
}

// confirmPage asks before purge, retry or delete. GET only: the action is the
// POST its form sends.
func (d *Dashboard) confirmPage(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Confirm", "dead")
	p.Refresh = 0
	name := r.PathValue("name")
	if broker.ValidateQueueName(name) != nil {
		d.fail(w, r, http.StatusNotFound, "no such queue")
		return
	}
	q := r.URL.Query()
	m := view.Confirm{Queue: name, Action: q.Get("action"), IDs: q["ids"], All: q.Get("all") == "true"}
	dead := r.URL.Path != "/queues/"+name+"/confirm"
	switch {
	case !dead && m.Action == "purge":
		p.Section = "overview"
		m.Post, m.Cancel = p.URL(view.QueueURL(name)+"/purge"), p.URL(view.QueueURL(name))
	case dead && (m.Action == "retry" || m.Action == "delete"):
		m.Post, m.Cancel = p.URL(view.DeadURL(name)+"/"+m.Action), p.URL(view.DeadURL(name))
		if len(m.IDs) == 0 && !m.All {
			redirect(w, p.URL(view.DeadURL(name))+"?done=none")
			return
		}
	default:
		d.fail(w, r, http.StatusBadRequest, "unknown action")
		return
	}
	st := d.stats.get(r.Context(), []string{name})[name]
	if st.err != nil {
		d.fail(w, r, brokerStatus(st.err), "queue "+name+": "+st.err.Error())
		return
	}
	m.Count = st.stats.Dead
	if m.Action == "purge" {
		m.Count = st.stats.Ready
	}
	d.render(w, r, http.StatusOK, view.ConfirmPage(p, m), nil)
}

func (d *Dashboard) purgeForm(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Purge", "overview")
	name := r.PathValue("name")
	if broker.ValidateQueueName(name) != nil {
		d.fail(w, r, http.StatusNotFound, "no such queue")
		return
	}
	ctx, cancel := d.actionCtx(r)
	defer cancel()
	n, err := d.purge(ctx, name)
	if err != nil {
		d.fail(w, r, brokerStatus(err), "purge "+name+": "+err.Error())
		return
	}
	redirect(w, p.URL(view.QueueURL(name))+"?done=purge&n="+strconv.Itoa(n))
}

func (d *Dashboard) deadForm(w http.ResponseWriter, r *http.Request) {
	p := d.page(r, "Dead letters", "dead")
	name := r.PathValue("name")
	if broker.ValidateQueueName(name) != nil {
		d.fail(w, r, http.StatusNotFound, "no such queue")
		return
	}
	back := p.URL(view.DeadURL(name))
	sel, err := parseSelection(w, r)
	if err != nil {
		redirect(w, back+"?done=none")
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
		d.fail(w, r, brokerStatus(err), action+" dead letters of "+name+": "+err.Error())
		return
	}
	redirect(w, back+"?done="+action+"&n="+strconv.Itoa(n))
}

// flashText is the message after an action, built from a fixed set of codes
// (never from text in the URL).
func flashText(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	switch q.Get("done") {
	case "purge":
		return "Purged " + plural(n, "ready task") + "."
	case "retry":
		return "Sent " + plural(n, "dead letter") + " back to the queue."
	case "delete":
		return "Deleted " + plural(n, "dead letter") + "."
	case "none":
		return "Nothing was selected."
	}
	return ""
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// sumHistory adds up the per-minute counts of the queues shown.
func sumHistory(hist map[string][]api.Minute, now time.Time) []api.Minute {
	var out []api.Minute
	for _, h := range hist {
		if out == nil {
			out = make([]api.Minute, len(h))
			for i := range h {
				out[i].Time = h[i].Time
			}
		}
		for i := range h {
			out[i].Enqueued += h[i].Enqueued
			out[i].Succeeded += h[i].Succeeded
			out[i].Failed += h[i].Failed
			out[i].Dead += h[i].Dead
		}
	}
	if out == nil {
		out = history.EmptyHistory(now)
	}
	return out
}
