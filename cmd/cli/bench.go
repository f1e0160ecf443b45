package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/cmd/cli/internal/bench"
)

func init() { builtinCommands = append(builtinCommands, newBenchCommand) }

func newBenchCommand(app *App) *cobra.Command {
	var (
		scenario    string
		n           int
		prefetch    int
		concurrency int
		runs        int
		asJSON      bool
		timeout     time.Duration
		profileDir  string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure warren beside raw amqp091-go on a local RabbitMQ",
		Long: `Measure warren beside raw amqp091-go on the same RabbitMQ, back to back, and
print per scenario warren's figure, raw's figure and their ratio.

Scenarios: ` + strings.Join(bench.Scenarios, ", ") + ` (or all). Each declares
fresh durable quorum queues, sends persistent messages with 200-byte args,
and deletes its queues when done. The broker must be on this machine
(127.0.0.1 or localhost): a benchmark is load, and load stays local.

--n sizes every scenario: enqueue-16, drain and events-cost move n tasks per
side, latency-1 takes min(n, 2000) samples, e2e-latency n/2 per phase, and
memory pre-fills a backlog of 10n tasks. Run it on an otherwise idle machine:
figures taken under other load are noise.`,
		Example: `  warren bench                                  # every scenario, n = 100,000
  warren bench --runs 3                         # medians of 3 runs (docs/performance.md)
  warren bench --scenario drain,events-cost --n 20000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var scenarios []string // nil: all
			if scenario != "all" {
				scenarios = strings.Split(scenario, ",")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			path := strings.Fields(cmd.CommandPath())[1:] // the way back to this command
			rep, err := bench.Run(ctx, bench.Config{
				URL: app.URL(), Scenarios: scenarios, N: n, Runs: runs, Prefetch: prefetch, Concurrency: concurrency,
				Progress: cmd.ErrOrStderr(), ProfileDir: profileDir,
				Child: func(ctx context.Context, args []string) *exec.Cmd {
					exe, err := os.Executable()
					if err != nil {
						exe = os.Args[0]
					}
					return exec.CommandContext(ctx, exe, append(append(path, "child"), args...)...)
				},
			})
			if err != nil {
				return err
			}
			if asJSON {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&scenario, "scenario", "all", "scenarios to run, comma-separated: all, or from "+strings.Join(bench.Scenarios, ", "))
	fl.IntVar(&n, "n", bench.DefaultN, "size of the scenarios (tasks per side)")
	fl.IntVar(&prefetch, "prefetch", bench.DefaultPrefetch, "prefetch of warren's and raw's consumers")
	fl.IntVar(&concurrency, "concurrency", bench.DefaultConcurrency, "concurrency of warren's worker")
	fl.IntVar(&runs, "runs", 1, "run every scenario this many times and report medians")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	fl.DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long")
	fl.StringVar(&profileDir, "profile", "", "write a CPU profile of every measured phase into this directory")

	cmd.AddCommand(&cobra.Command{
		// The worker process of the memory scenario, started by bench itself.
		Use: "child", Hidden: true, DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			url := os.Getenv("WARREN_AMQP_URL")
			if url == "" {
				url = app.URL()
			}
			if err := bench.RunChild(cmd.Context(), url, args, cmd.InOrStdin(), cmd.OutOrStdout()); err != nil {
				return fmt.Errorf("bench child: %w", err)
			}
			return nil
		},
	})
	return cmd
}
