package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/dashboard/internal/assets"
	"github.com/warrenjobs/warren/dashboard/internal/history"
)

// Dashboard is the web dashboard: an http.Handler serving the screens, the
// JSON API and the embedded assets, plus the event follower that Run drives.
type Dashboard struct {
	cfg      Config
	broker   broker.Broker
	log      *slog.Logger
	store    *history.Store
	follower *follower
	stats    *statsCache
	handler  http.Handler
	now      func() time.Time
}

var errAlreadyRunning = errors.New("dashboard: Run is already running")

// New checks cfg and returns a dashboard. Call Run to follow events; until
// then the screens show broker figures only.
func New(cfg Config) (*Dashboard, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dashboard: invalid config: %w", err)
	}
	store := history.New(cfg.limits())
	d := &Dashboard{
		cfg:      cfg,
		broker:   cfg.Broker,
		log:      cfg.Logger,
		store:    store,
		follower: &follower{broker: cfg.Broker, store: store, log: cfg.Logger, replay: cfg.Replay},
		stats:    newStatsCache(cfg.Broker, cfg.BrokerTimeout),
		now:      time.Now,
	}
	d.handler = d.routes()
	return d, nil
}

// Run follows the events log until ctx is cancelled, keeping the dashboard's
// history of tasks, workers and rates current. It first replays Config.Replay
// of retained events. It returns nil when ctx is cancelled, an error
// wrapping broker.ErrClosed when the broker is closed, and an error if it is
// already running.
func (d *Dashboard) Run(ctx context.Context) error {
	return d.follower.Run(ctx)
}

// Replaying reports whether Run is still reading the retained history.
func (d *Dashboard) Replaying() bool { return !d.follower.caughtUp.Load() }

// ServeHTTP serves the dashboard. Mount it at the root of a server or under a
// path prefix with http.StripPrefix; every link it writes is relative.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.handler.ServeHTTP(w, r)
}

func (d *Dashboard) routes() http.Handler {
	mux := http.NewServeMux()

	mux.Handle("GET /assets/{name}", assets.Handler())

	// Screens.
	mux.HandleFunc("GET /{$}", d.overviewPage)
	mux.HandleFunc("GET /workers", d.workersPage)
	mux.HandleFunc("GET /tasks", d.tasksPage)
	mux.HandleFunc("GET /tasks/{id}", d.taskPage)
	mux.HandleFunc("GET /dead", d.deadIndexPage)
	mux.HandleFunc("GET /queues/{name}", d.queuePage)
	mux.HandleFunc("GET /queues/{name}/dead", d.deadPage)
	mux.Handle("GET /queues/{name}/confirm", d.mutation(http.HandlerFunc(d.confirmPage)))
	mux.Handle("GET /queues/{name}/dead/confirm", d.mutation(http.HandlerFunc(d.confirmPage)))
	mux.Handle("POST /queues/{name}/purge", d.mutation(http.HandlerFunc(d.purgeForm)))
	mux.Handle("POST /queues/{name}/dead/retry", d.mutation(http.HandlerFunc(d.deadForm)))
	mux.Handle("POST /queues/{name}/dead/delete", d.mutation(http.HandlerFunc(d.deadForm)))

	// JSON API.
	mux.HandleFunc("GET /api/queues", d.apiQueues)
	mux.HandleFunc("GET /api/queues/{name}", d.apiQueue)
	mux.HandleFunc("GET /api/queues/{name}/dead", d.apiDead)
	mux.HandleFunc("GET /api/workers", d.apiWorkers)
	mux.HandleFunc("GET /api/tasks", d.apiTasks)
	mux.HandleFunc("GET /api/tasks/{id}", d.apiTask)
	mux.Handle("POST /api/queues/{name}/purge", d.mutation(http.HandlerFunc(d.apiPurge)))
	mux.Handle("POST /api/queues/{name}/dead/retry", d.mutation(http.HandlerFunc(d.apiDeadAction)))
	mux.Handle("POST /api/queues/{name}/dead/delete", d.mutation(http.HandlerFunc(d.apiDeadAction)))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.log.Warn("dashboard: cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		d.fail(w, r, http.StatusForbidden, "cross-origin request refused")
	}))
	protected := d.authenticate(cop.Handler(mux))

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if r.URL.Path == "" {
			// Mounted under a prefix and asked for it without the trailing
			// slash: relative links need one.
			w.Header().Set("Location", path.Base(requestPath(r))+"/")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		if r.URL.Path == "/healthz" {
			d.healthz(w, r)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// requestPath is the path the client asked for, before any StripPrefix.
func requestPath(r *http.Request) string {
	p := r.RequestURI
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return "/"
	}
	return p
}

// mutation guards an endpoint that changes something: refused in read-only
// mode. Cross-origin protection and POST-only routing apply to it as well.
func (d *Dashboard) mutation(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.cfg.ReadOnly {
			d.fail(w, r, http.StatusForbidden, "the dashboard is read-only")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// brokerCtx bounds a broker call made for a request.
func (d *Dashboard) brokerCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d.cfg.BrokerTimeout)
}
