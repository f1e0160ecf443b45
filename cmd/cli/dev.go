package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/dashboard"
	"github.com/warrenjobs/warren/jobs"
)

// The dev command joins every tree built by NewRootCommand.
func init() { builtinCommands = append(builtinCommands, newDevCommand) }

// DevProducer feeds `dev` with example tasks: it enqueues through client onto
// queue, about rate tasks a second, until ctx is cancelled, and returns nil
// then. It must enqueue only kinds the tree's workers run: `dev` stops with an
// error at the first task of any other kind. A binary passes its producer in
// Options.DevProducer (the stock warren binary passes demo.Produce, for its
// demo kinds); without one, `dev` runs the worker and the dashboard only.
type DevProducer func(ctx context.Context, client *jobs.Client, queue string, rate float64) error

// dev's fixed settings.
const (
	// devProbeTimeout is how long dev waits for RabbitMQ before it falls back
	// to the in-memory broker.
	devProbeTimeout = 2 * time.Second
	// devShutdownTimeout is how long the worker's warm shutdown waits for
	// running tasks (the demo's slowest take 3 s).
	devShutdownTimeout = 10 * time.Second
	// devStopTimeout bounds each later step of the stop: flushing events,
	// shutting the dashboard's server down.
	devStopTimeout = 5 * time.Second
	// devHistory is the default --history: enough for the last sessions,
	// short enough that the dashboard is current within moments of starting
	// (the dashboard command's default is 24 h).
	devHistory = time.Hour
	maxDevRate = 1000
)

type devFlags struct {
	addr     string
	auth     string
	insecure bool
	queue    string
	rate     float64
	memory   bool
	history  time.Duration
}

func newDevCommand(app *App) *cobra.Command {
	var f devFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a broker, a worker, a demo producer and the dashboard in one process",
		Long: `Run everything warren needs in one process, to try it or to develop against it:
a broker, a worker running this binary's job kinds on --queue, a producer
feeding it a steady mix of demo tasks, and the dashboard.

The broker is the RabbitMQ at --amqp-url ($WARREN_AMQP_URL) when it answers
within 2 s; otherwise, or with --memory, an in-process broker whose queues and
history are gone at exit. dev prints which, and why, then the dashboard's URL.

The stock warren binary's producer enqueues successes, slow tasks, retries
that then succeed, failures that end dead-lettered, and delayed tasks, about
--rate a second. A binary built with cli.Execute has no producer unless it
passes one in cli.Options.DevProducer (it must enqueue only kinds the binary
runs): dev then runs the worker and the dashboard, and says so.

The dashboard listens on --addr and, like the dashboard command, refuses an
address reachable from other machines without --basic-auth
($WARREN_DASHBOARD_AUTH) or --insecure-no-auth. On RabbitMQ it first replays
--history of warren's events log, so earlier runs show too; a busy log takes
a while to replay.

SIGINT or SIGTERM stops everything cleanly: the producer stops, the worker
finishes its running tasks (for up to 10 s), the dashboard shuts down, and dev
exits 0. A second signal exits at once with status 1.`,
		Example: `  warren dev                            # RabbitMQ if it answers, else in-memory
  warren dev --memory --rate 10 --addr 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), app, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:5555", "dashboard listen address")
	fl.StringVar(&f.auth, "basic-auth", "", "require HTTP basic auth on the dashboard as user:password")
	fl.BoolVar(&f.insecure, "insecure-no-auth", false, "allow serving the dashboard without authentication on a non-loopback address")
	fl.StringVar(&f.queue, "queue", "dev", "queue the producer fills and the worker consumes")
	fl.Float64Var(&f.rate, "rate", 2, "tasks a second the demo producer enqueues (0: no producer)")
	fl.BoolVar(&f.memory, "memory", false, "use the in-memory broker even when RabbitMQ answers")
	fl.DurationVar(&f.history, "history", devHistory, "how much of RabbitMQ's events log the dashboard replays at start")
	BindEnv(cmd, "basic-auth", "WARREN_DASHBOARD_AUTH")
	return cmd
}

// validate checks the flags and returns the dashboard's basic auth, if any.
func (f devFlags) validate() (*dashboard.BasicAuth, error) {
	var errs []error
	var auth *dashboard.BasicAuth
	if f.auth != "" {
		a, err := dashboard.ParseBasicAuth(f.auth)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid --basic-auth: %w", err))
		}
		auth = a
	}
	if err := dashboard.CheckListenAddr(f.addr, f.auth != "", f.insecure); err != nil {
		errs = append(errs, err)
	}
	if err := broker.ValidateQueueName(f.queue); err != nil {
		errs = append(errs, fmt.Errorf("invalid --queue: %w", err))
	}
	if f.history <= 0 {
		errs = append(errs, fmt.Errorf("invalid --history %s: must be positive", f.history))
	}
	if !(f.rate >= 0 && f.rate <= maxDevRate) {
		errs = append(errs, fmt.Errorf("invalid --rate %v: must be 0..%d tasks a second", f.rate, maxDevRate))
	}
	return auth, errors.Join(errs...)
}

func runDev(ctx context.Context, app *App, f devFlags, out io.Writer) error {
	auth, err := f.validate()
	if err != nil {
		return err
	}
	kinds := app.Workers.Kinds()
	if len(kinds) == 0 {
		return errors.New("no job kinds are registered: register workers with jobs.AddWorker before cli.Execute")
	}
	log := app.Logger()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	defer ln.Close()

	b, how, err := openDevBroker(ctx, app, f.memory)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting: nothing to stop
		}
		return err
	}
	defer b.Close()
	printField(out, "broker", how)
	// Declared before anything looks: the dashboard remembers a queue the
	// broker did not know for a while.
	dctx, dcancel := context.WithTimeout(ctx, connectTimeout)
	err = b.Declare(dctx, f.queue)
	dcancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("declare queue %q: %w", f.queue, err)
	}

	// The first signal stops everything cleanly, the second exits now.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopSignals := handleSignals(cancel, log, b)
	defer stopSignals()

	// A component that fails stops all the others; dev then returns its error.
	var mu sync.Mutex
	var failure error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if failure == nil && runCtx.Err() == nil {
			failure = err
			cancel()
			return
		}
		log.Debug("dev: error while stopping", "err", err)
	}

	d, err := dashboard.New(dashboard.Config{Broker: b, Logger: log, BasicAuth: auth, Queues: []string{f.queue}, Replay: f.history})
	if err != nil {
		return err
	}
	runner, err := jobs.NewRunner(b, app.Workers, &jobs.RunnerConfig{
		Queues: map[string]int{f.queue: 1}, ShutdownTimeout: devShutdownTimeout, Logger: log,
	})
	if err != nil {
		return err
	}
	client, err := jobs.NewClient(b, &jobs.ClientConfig{
		Logger:     log,
		Middleware: []jobs.EnqueueMiddleware{onlyKinds(kinds, fail)},
	})
	if err != nil {
		return err
	}

	var dashWG sync.WaitGroup
	dashWG.Go(func() {
		if err := d.Run(runCtx); err != nil {
			fail(fmt.Errorf("dashboard: %w", err))
		}
	})
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	dashWG.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("dashboard server: %w", err))
		}
	})
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		err := runner.Run(runCtx)
		switch {
		case runCtx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)):
		case err != nil:
			fail(fmt.Errorf("worker: %w", err))
		default:
			fail(errors.New("worker: stopped by itself"))
		}
	}()
	printField(out, "worker", fmt.Sprintf("queue %q: %s (%d at once)", f.queue, quoteList(kinds), runner.Stats().Concurrency))

	producerDone := make(chan struct{})
	switch {
	case app.devProducer == nil:
		close(producerDone)
		printField(out, "producer", fmt.Sprintf("none: this binary passes no demo producer (cli.Options.DevProducer); enqueue with `%s enqueue KIND ARGS --queue %s`", app.Name, f.queue))
	case f.rate == 0:
		close(producerDone)
		printField(out, "producer", "off (--rate 0)")
	default:
		go func() {
			defer close(producerDone)
			if err := app.devProducer(runCtx, client, f.queue, f.rate); err != nil {
				fail(fmt.Errorf("dev producer: %w", err))
			} else if runCtx.Err() == nil {
				log.Info("dev producer finished")
			}
		}()
		printField(out, "producer", fmt.Sprintf("about %s tasks/s onto %q", strconv.FormatFloat(f.rate, 'g', -1, 64), f.queue))
	}
	printField(out, "dashboard", dashboardURL(ln.Addr()))
	fmt.Fprintln(out, "Ctrl-C stops everything.")

	// Stop in order: the producer, then the worker (finishing its running
	// tasks), then the dashboard, then the broker (deferred).
	<-runCtx.Done()
	log.Info("dev: stopping")
	<-producerDone
	flushCtx, flushCancel := context.WithTimeout(context.WithoutCancel(ctx), devStopTimeout)
	_ = client.Close(flushCtx)
	flushCancel()
	log.Info("dev: producer stopped")
	<-workerDone
	shutCtx, shutCancel := context.WithTimeout(context.WithoutCancel(ctx), devStopTimeout)
	_ = srv.Shutdown(shutCtx)
	shutCancel()
	dashWG.Wait()
	log.Info("dev: dashboard stopped")
	log.Info("dev: stopped")

	mu.Lock()
	defer mu.Unlock()
	return failure
}

// openDevBroker connects to RabbitMQ at the App's URL, waiting at most
// devProbeTimeout, and falls back to an in-memory broker when it does not
// answer; with forceMemory it goes straight to memory. It returns the broker
// and a line that says which it is, and why. An invalid URL is an error, not
// a reason to fall back.
func openDevBroker(ctx context.Context, app *App, forceMemory bool) (broker.Broker, string, error) {
	if forceMemory {
		return memory.New(memory.Config{Logger: app.Logger()}), "in-memory (--memory): nothing survives exit", nil
	}
	if err := checkURL(app.url); err != nil {
		return nil, "", err
	}
	pctx, cancel := context.WithTimeout(ctx, devProbeTimeout)
	defer cancel()
	b, err := app.open(pctx, app.url, app.Logger())
	if err == nil {
		return b, "RabbitMQ at " + app.RedactedURL(), nil
	}
	if ctx.Err() != nil {
		return nil, "", ctx.Err()
	}
	return memory.New(memory.Config{Logger: app.Logger()}),
		fmt.Sprintf("RabbitMQ at %s not reachable (%s): using the in-memory broker; nothing survives exit",
			app.RedactedURL(), unreachableReason(err)), nil
}

// unreachableReason says briefly why the broker did not answer: the network
// error when there is one (the URL is already in the sentence).
func unreachableReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", devProbeTimeout)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return redactText(op.Error())
	}
	return oneLine(redactText(err.Error()))
}

// onlyKinds refuses, and reports to fail, any enqueue of a kind outside
// kinds: a dev producer must not fill the queue with tasks no worker of the
// binary can run.
func onlyKinds(kinds []string, fail func(error)) jobs.EnqueueMiddleware {
	return func(next jobs.EnqueueFunc) jobs.EnqueueFunc {
		return func(ctx context.Context, msgs []*broker.Message) error {
			for _, m := range msgs {
				if !slices.Contains(kinds, m.Kind) {
					err := fmt.Errorf("dev producer enqueued kind %q, which no worker of this binary runs (registered kinds: %s)", m.Kind, quoteList(kinds))
					fail(err)
					return err
				}
			}
			return next(ctx, msgs)
		}
	}
}

// handleSignals calls cancel at the first SIGINT or SIGTERM and exits the
// process at the second. Call the returned function to stop listening.
func handleSignals(cancel context.CancelFunc, log *slog.Logger, b broker.Broker) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case sig := <-sigs:
				if n == 1 {
					log.Info("dev: signal received (signal again to exit now)", "signal", sig.String())
					cancel()
					continue
				}
				log.Warn("dev: exiting now", "signal", sig.String())
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

// dashboardURL is the URL to open for a listener's address: a wildcard
// address is shown as localhost.
func dashboardURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// printField prints one line of dev's start-up summary.
func printField(w io.Writer, name, value string) {
	fmt.Fprintf(w, "%-10s %s\n", name, value)
}
