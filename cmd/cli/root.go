package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/cmd/cli/internal/redact"
	"github.com/warrenjobs/warren/jobs"
)

// DefaultAMQPURL is the broker URL used when neither --amqp-url nor
// WARREN_AMQP_URL is set.
const DefaultAMQPURL = "amqp://guest:guest@localhost:5672/"

// connectTimeout bounds opening the broker connection.
const connectTimeout = 15 * time.Second

// OpenFunc opens a broker at url.
type OpenFunc func(ctx context.Context, url string, logger *slog.Logger) (broker.Broker, error)

// CommandFunc builds a command from the resolved App. It is called once, when
// the tree is built; the App's configuration is filled in before any command
// runs, so read it in RunE, not here.
type CommandFunc func(app *App) *cobra.Command

// builtinCommands are commands that other files of this package add to every
// tree, from an init function (warren dashboard does).
var builtinCommands []CommandFunc

// Options change how the tree is built. The zero value builds the stock tree.
type Options struct {
	// Name is the program's name in usage lines. Default: the base name of
	// os.Args[0].
	Name string
	// Version is what `version` prints. Default: the version stamped at build
	// time (-ldflags "-X github.com/warrenjobs/warren/cmd/cli.version=v1.2.3"),
	// else the module version from the build info.
	Version string
	// Open opens the broker. Default: RabbitMQ through broker/amqp.
	Open OpenFunc
	// Commands are added to the root command.
	Commands []CommandFunc
	// DevProducer feeds `dev` with example tasks of the registered kinds.
	// Default: none; `dev` runs the worker and the dashboard only.
	DevProducer DevProducer
}

// App is what commands share: the registered workers and the configuration
// resolved from flags and environment before any command runs.
type App struct {
	// Workers are the registered job kinds.
	Workers *jobs.Workers
	// Name is the program's name.
	Name string
	// Version is the program's version.
	Version string

	url    string
	logFmt string
	logLvl string
	logger *slog.Logger
	open   OpenFunc

	devProducer DevProducer
}

// URL returns the broker URL in force. Never print it: use RedactedURL.
func (a *App) URL() string { return a.url }

// RedactedURL returns the broker URL with its password masked.
func (a *App) RedactedURL() string { return redact.URL(a.url) }

// Logger returns the logger configured by --log-format and --log-level,
// writing to the command's stderr.
func (a *App) Logger() *slog.Logger {
	if a.logger == nil {
		return slog.Default()
	}
	return a.logger
}

// OpenBroker connects to the broker. The caller closes it.
func (a *App) OpenBroker(ctx context.Context) (broker.Broker, error) {
	if err := checkURL(a.url); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	b, err := a.open(ctx, a.url, a.Logger())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", a.RedactedURL(), err)
	}
	return b, nil
}

// opTimeout bounds one operations command (not the worker, not enqueue).
const opTimeout = 2 * time.Minute

// withBroker opens the broker for one operations command, runs fn bounded
// by opTimeout, and closes the broker.
func withBroker(cmd *cobra.Command, app *App, fn func(ctx context.Context, b broker.Broker) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), opTimeout)
	defer cancel()
	b, err := app.OpenBroker(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(ctx, b)
}

// NewRootCommand builds the command tree for workers. opts may be nil.
func NewRootCommand(workers *jobs.Workers, opts *Options) *cobra.Command {
	var o Options
	if opts != nil {
		o = *opts
	}
	if workers == nil {
		workers = jobs.NewWorkers()
	}
	app := &App{Workers: workers, Name: o.Name, Version: o.Version, open: o.Open, devProducer: o.DevProducer}
	if app.Name == "" {
		app.Name = filepath.Base(os.Args[0])
	}
	if app.Version == "" {
		app.Version = buildVersion()
	}
	if app.open == nil {
		app.open = openAMQP
	}

	root := &cobra.Command{
		Use:           app.Name,
		Short:         "Run warren workers and operate their queues",
		Long:          "Run warren workers and operate their queues, dead letters and tasks on RabbitMQ.",
		Version:       app.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			logger, err := newLogger(cmd.ErrOrStderr(), app.logFmt, app.logLvl)
			if err != nil {
				return err
			}
			app.logger = logger
			slog.SetDefault(logger)
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&app.url, "amqp-url", DefaultAMQPURL, "RabbitMQ URL (amqp:// or amqps://)")
	pf.StringVar(&app.logFmt, "log-format", "text", "log format: text or json")
	pf.StringVar(&app.logLvl, "log-level", "info", "log level: debug, info, warn or error")
	pf.Lookup("amqp-url").DefValue = redact.URL(DefaultAMQPURL) // help shows no password either
	BindEnv(root, "amqp-url", "WARREN_AMQP_URL")
	BindEnv(root, "log-format", "WARREN_LOG_FORMAT")
	BindEnv(root, "log-level", "WARREN_LOG_LEVEL")

	root.AddCommand(
		newWorkerCommand(app),
		newEnqueueCommand(app),
		newQueuesCommand(app),
		newDeadCommand(app),
		newTasksCommand(app),
		newWorkersCommand(app),
		newVersionCommand(app),
	)
	for _, f := range append(append([]CommandFunc(nil), builtinCommands...), o.Commands...) {
		root.AddCommand(f(app))
	}
	return root
}

// Execute runs the command tree built for workers with os.Args, and returns
// the process exit status. SIGINT and SIGTERM cancel ctx (the worker command
// handles them itself: first warm shutdown, second exit now).
func Execute(ctx context.Context, workers *jobs.Workers) int {
	return ExecuteWith(ctx, workers, nil)
}

// ExecuteWith is Execute with Options.
func ExecuteWith(ctx context.Context, workers *jobs.Workers, opts *Options) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCommand(workers, opts)
	return Run(ctx, root, os.Args[1:], os.Stdout, os.Stderr)
}

// Run executes root with args, writing to stdout and stderr, and returns the
// exit status. An error is printed as one line, with any URL password masked.
func Run(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %s\n", root.Name(), oneLine(redact.Text(err.Error())))
	return 1
}

// oneLine joins a multi-line error (errors.Join) into one line.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	return strings.Join(lines, "; ")
}
