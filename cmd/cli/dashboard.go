package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/dashboard"
)

// The dashboard command joins every tree built by NewRootCommand.
func init() { builtinCommands = append(builtinCommands, newDashboardCommand) }

type dashboardFlags struct {
	addr         string
	auth         string
	readOnly     bool
	insecure     bool
	refresh      time.Duration
	replay       time.Duration
	maxTasks     int
	offlineAfter time.Duration
	dropAfter    time.Duration
	queues       []string
}

func newDashboardCommand(app *App) *cobra.Command {
	var f dashboardFlags
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard",
		Long: `Serve the web dashboard: queues, workers, recent tasks and dead letters, with a
JSON API under /api and an open /healthz.

It listens on 127.0.0.1:5555 by default. It refuses any address reachable
from other machines unless --basic-auth is set (prefer $WARREN_DASHBOARD_AUTH:
a flag is visible in the process list) or --insecure-no-auth is given.
History (tasks, workers, rates) comes from warren's events log, replayed
from --history ago at start, so a restart loses nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDashboard(cmd.Context(), app, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:5555", "listen address")
	fl.StringVar(&f.auth, "basic-auth", "", "require HTTP basic auth as user:password")
	fl.BoolVar(&f.readOnly, "read-only", false, "show everything, change nothing (purge, retry and delete are refused)")
	fl.BoolVar(&f.insecure, "insecure-no-auth", false, "allow serving without authentication on a non-loopback address")
	fl.DurationVar(&f.refresh, "refresh", dashboard.DefaultRefreshInterval, "how often pages refresh (0.5s minimum; negative: never)")
	fl.DurationVar(&f.replay, "history", dashboard.DefaultReplay, "how much of the events log to replay at start")
	fl.IntVar(&f.maxTasks, "max-tasks", 10_000, "recent tasks kept in memory")
	fl.DurationVar(&f.offlineAfter, "worker-offline-after", 15*time.Second, "mark a worker offline after this long without a heartbeat")
	fl.DurationVar(&f.dropAfter, "worker-drop-after", 15*time.Minute, "remove a silent worker from the list after this long")
	fl.StringSliceVar(&f.queues, "queues", nil, "queues to list even before any event names them (comma-separated)")
	BindEnv(cmd, "addr", "WARREN_DASHBOARD_ADDR")
	BindEnv(cmd, "basic-auth", "WARREN_DASHBOARD_AUTH")
	BindEnv(cmd, "read-only", "WARREN_DASHBOARD_READ_ONLY")
	return cmd
}

func runDashboard(ctx context.Context, app *App, f dashboardFlags) error {
	var auth *dashboard.BasicAuth
	if f.auth != "" {
		a, err := dashboard.ParseBasicAuth(f.auth)
		if err != nil {
			return fmt.Errorf("invalid --basic-auth: %w", err)
		}
		auth = a
	}
	if err := dashboard.CheckListenAddr(f.addr, auth != nil, f.insecure); err != nil {
		return err
	}
	log := app.Logger()
	b, err := app.OpenBroker(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	d, err := dashboard.New(dashboard.Config{
		Broker: b, Logger: log, ReadOnly: f.readOnly, BasicAuth: auth,
		RefreshInterval: f.refresh, Replay: f.replay, Queues: f.queues, MaxTasks: f.maxTasks,
		WorkerOfflineAfter: f.offlineAfter, WorkerDropAfter: f.dropAfter,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() {
		if err := d.Run(ctx); err != nil {
			errs <- err
		}
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	if auth == nil && f.insecure {
		log.Warn("dashboard serving without authentication", "addr", ln.Addr().String())
	}
	log.Info("dashboard listening", "url", "http://"+ln.Addr().String()+"/", "read_only", f.readOnly,
		"auth", auth != nil, "broker", app.RedactedURL())

	select {
	case <-ctx.Done():
		err = nil
	case err = <-errs:
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	log.Info("dashboard stopped")
	return err
}
