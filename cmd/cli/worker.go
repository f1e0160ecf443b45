package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/cmd/cli/internal/metrics"
	"github.com/warrenjobs/warren/cmd/cli/internal/redact"
	"github.com/warrenjobs/warren/jobs"
)

// exitNow ends the process on a second signal; tests of the package replace it.
var exitNow = os.Exit

type workerFlags struct {
	queues          string
	concurrency     int
	prefetch        int
	shutdownTimeout time.Duration
	exitWhenIdle    time.Duration
	httpAddr        string
}

func newWorkerCommand(app *App) *cobra.Command {
	var f workerFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker: consume queues and execute their tasks",
		Long: `Run a worker: consume queues and execute their tasks until SIGINT or SIGTERM.

The first signal starts a warm shutdown: no new task is taken, running tasks
get --shutdown-timeout to finish, and everything unfinished goes back to its
queue. A second signal exits at once; unfinished tasks go back to their queues
when the connection closes.

With --http, the worker serves /metrics (Prometheus), /healthz (the process is
up) and /readyz (the broker answers and the worker is not shutting down).`,
		Example: `  warren worker --queues default,emails:3 --concurrency 20 --http :9090
  warren worker --queues batch --exit-when-idle 5s   # drain, then exit 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), app, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.queues, "queues", jobs.DefaultQueue, "queues to consume, with optional weights: a,b or a:3,b:1")
	fl.IntVar(&f.concurrency, "concurrency", 10, "tasks run at once")
	fl.IntVar(&f.prefetch, "prefetch", 0, "unsettled deliveries per queue (0: same as --concurrency)")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a warm shutdown waits for running tasks")
	fl.DurationVar(&f.exitWhenIdle, "exit-when-idle", 0, "exit 0 once the queues are empty and no task ran for this long (0: never)")
	fl.StringVar(&f.httpAddr, "http", "", "serve /metrics, /healthz and /readyz on this address, e.g. :9090")
	for name, env := range map[string]string{
		"queues": "WARREN_QUEUES", "concurrency": "WARREN_CONCURRENCY", "prefetch": "WARREN_PREFETCH",
		"shutdown-timeout": "WARREN_SHUTDOWN_TIMEOUT", "exit-when-idle": "WARREN_EXIT_WHEN_IDLE", "http": "WARREN_HTTP",
	} {
		BindEnv(cmd, name, env)
	}
	return cmd
}

// parseQueues reads "a,b" or "a:3,b:1" into queue weights.
func parseQueues(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight := part, 1
		if i := strings.LastIndexByte(part, ':'); i >= 0 {
			name = part[:i]
			w, err := strconv.Atoi(part[i+1:])
			if err != nil || w < 1 {
				return nil, fmt.Errorf("invalid --queues entry %q: weight must be a whole number ≥ 1", part)
			}
			weight = w
		}
		if err := broker.ValidateQueueName(name); err != nil {
			return nil, fmt.Errorf("invalid --queues entry %q: %w", part, err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("invalid --queues: queue %q named twice", name)
		}
		out[name] = weight
	}
	if len(out) == 0 {
		return nil, errors.New("invalid --queues: name at least one queue")
	}
	return out, nil
}

func (f workerFlags) validate() error {
	var errs []error
	if f.concurrency < 1 {
		errs = append(errs, fmt.Errorf("invalid --concurrency %d: must be at least 1", f.concurrency))
	}
	if f.prefetch < 0 || f.prefetch > 65535 {
		errs = append(errs, fmt.Errorf("invalid --prefetch %d: must be 0..65535", f.prefetch))
	}
	if f.shutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("invalid --shutdown-timeout %s: must not be negative", f.shutdownTimeout))
	}
	if f.exitWhenIdle < 0 {
		errs = append(errs, fmt.Errorf("invalid --exit-when-idle %s: must not be negative", f.exitWhenIdle))
	}
	return errors.Join(errs...)
}

func runWorker(ctx context.Context, app *App, f workerFlags) error {
	queues, err := parseQueues(f.queues)
	if err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	if len(app.Workers.Kinds()) == 0 {
		return errors.New("no job kinds are registered: register workers with jobs.AddWorker before cli.Execute")
	}
	var ln net.Listener
	if f.httpAddr != "" {
		if ln, err = net.Listen("tcp", f.httpAddr); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		defer ln.Close()
	}
	log := app.Logger()

	b, err := app.OpenBroker(ctx)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil // a signal while connecting: nothing started, a clean stop
		}
		return err
	}
	defer b.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer shutdownOnSignals(log, b, cancel)()

	var runner *jobs.Runner
	status := func() jobs.WorkerStatus { return runner.Stats() }
	idle := newIdleWatch(b, sortedKeys(queues), f.exitWhenIdle, status, log)
	onEvent := idle.Observe
	reg := prometheus.NewRegistry()
	if ln != nil {
		m := metrics.New(reg, app.Workers.Kinds(), status)
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		onEvent = func(e jobs.Event) { m.Observe(e); idle.Observe(e) }
	}
	runner, err = jobs.NewRunner(b, app.Workers, &jobs.RunnerConfig{
		Queues: queues, Concurrency: f.concurrency, Prefetch: f.prefetch,
		ShutdownTimeout: f.shutdownTimeout, Logger: log, OnEvent: onEvent,
	})
	if err != nil {
		return err
	}
	if ln != nil {
		defer serveHTTP(ln, healthMux(reg, b, status), log)()
	}
	if f.exitWhenIdle > 0 {
		go idle.Run(runCtx, cancel)
	}
	log.Info("connected", "url", app.RedactedURL(), "kinds", app.Workers.Kinds())
	err = runner.Run(runCtx)
	if err != nil && runCtx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // stopped while still starting: a clean stop all the same
	}
	return err
}

// shutdownOnSignals calls cancel on the first SIGINT or SIGTERM (a warm
// shutdown) and exits the process on the second, after closing the broker
// connection so that unfinished deliveries go back to their queues at once.
// The returned function stops listening.
func shutdownOnSignals(log *slog.Logger, b broker.Broker, cancel context.CancelFunc) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case sig := <-sigs:
				if n == 1 {
					log.Info("shutting down: finishing running tasks (signal again to exit now)", "signal", sig.String())
					cancel()
					continue
				}
				log.Warn("exiting now: unfinished tasks go back to their queues", "signal", sig.String())
				closed := make(chan struct{})
				go func() { _ = b.Close(); close(closed) }()
				select {
				case <-closed:
				case <-time.After(2 * time.Second):
				}
				exitNow(1)
				return
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// serveHTTP serves h on ln until the returned function is called, which shuts
// the server down within 2 s.
func serveHTTP(ln net.Listener, h http.Handler, log *slog.Logger) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	log.Info("http server listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// healthMux serves the worker's HTTP endpoints.
func healthMux(reg *prometheus.Registry, b broker.Broker, status func() jobs.WorkerStatus) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if status().Stopping {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "shutting down")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := b.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "broker unreachable:", redact.Text(err.Error()))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
