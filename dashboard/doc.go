// Package dashboard is warren's web dashboard: an http.Handler showing
// queues, workers, recent tasks and dead letters, with a JSON API for
// everything it shows and controls to purge queues and retry or delete dead
// letters.
//
// Queue figures (ready, consumers, dead) come from the broker. Everything
// else — tasks and their attempts, workers, rates and the last hour's charts —
// comes from the lifecycle events workers and clients append to the broker's
// events log. Run replays the retained events (Config.Replay) and then
// follows new ones into a bounded in-memory history, so a restarted dashboard
// shows what happened before it started, and two dashboards agree.
//
//	d, err := dashboard.New(dashboard.Config{Broker: b, BasicAuth: &dashboard.BasicAuth{User: "ops", Password: pw}})
//	if err != nil { ... }
//	go d.Run(ctx)
//	http.Handle("/warren/", http.StripPrefix("/warren", d))
//
// Every link the dashboard writes is relative, so it works at any mount
// point. Screens are server-rendered (a-h/templ) and readable without
// JavaScript; with it, htmx refreshes their live parts every
// Config.RefreshInterval, and a header button pauses that. Assets are
// embedded and served under content-hashed names.
//
// # Security
//
// Basic auth (Config.BasicAuth) covers everything but GET /healthz.
// Mutations are POST-only, refused with 403 in read-only mode
// (Config.ReadOnly) and guarded by http.CrossOriginProtection. Pages are sent
// with a strict Content-Security-Policy (no inline script) and
// Cache-Control: no-store. CheckListenAddr is the check `warren dashboard`
// makes before listening: no serving beyond loopback without authentication
// unless explicitly allowed.
//
// # What comes from events
//
// In flight, delayed, oldest ready, the rates and the task list are derived
// from events: workers running with events disabled are invisible to them,
// and history is bounded (Config.MaxTasks, Config.MaxTaskBytes). A task
// whose worker stopped sending heartbeats is shown queued again, since the
// broker gives its delivery back. Retrying dead letters from the dashboard
// appends an "enqueued" event for each retried task the history knows, so
// every dashboard shows them queued until a worker starts them. A purge
// appends nothing: purged tasks keep their last known state in the task list.
package dashboard
