package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/cmd/cli"
	"github.com/warrenjobs/warren/jobs"
)

type greet struct {
	Name string `json:"name"`
}

func (greet) Kind() string { return "test.greet" }

// keepOpen lets every command of a test share one in-memory broker: the
// commands close what they open.
type keepOpen struct{ broker.Broker }

func (keepOpen) Close() error { return nil }

// tree builds a user's command tree on an in-memory broker, with one extra
// command added the way the dashboard adds its own.
func tree(t *testing.T) (run func(args ...string) (stdout, stderr string, code int)) {
	t.Helper()
	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, jobs.WorkFunc(func(context.Context, *jobs.Job[greet]) error { return nil }))
	mem := memory.New(memory.Config{})
	t.Cleanup(func() { _ = mem.Close() })
	opts := &cli.Options{
		Name:    "myapp",
		Version: "v1.2.3",
		Open: func(context.Context, string, *slog.Logger) (broker.Broker, error) {
			return keepOpen{mem}, nil
		},
		Commands: []cli.CommandFunc{func(app *cli.App) *cobra.Command {
			var greeting string
			cmd := &cobra.Command{
				Use: "ping",
				RunE: func(cmd *cobra.Command, _ []string) error {
					b, err := app.OpenBroker(cmd.Context())
					if err != nil {
						return err
					}
					defer b.Close()
					if err := b.Ping(cmd.Context()); err != nil {
						return err
					}
					app.Logger().Info("pinged", "url", app.URL())
					_, err = fmt.Fprintln(cmd.OutOrStdout(), greeting, app.RedactedURL(), app.Workers.Kinds())
					return err
				},
			}
			cmd.Flags().StringVar(&greeting, "greeting", "pong", "")
			cli.BindEnv(cmd, "greeting", "WARREN_TEST_GREETING")
			return cmd
		}},
	}
	return func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		root := cli.NewRootCommand(workers, opts)
		code := cli.Run(context.Background(), root, args, &stdout, &stderr)
		return stdout.String(), stderr.String(), code
	}
}

// TestUserTree runs a user's own tree in-process: the built-in commands work
// on the user's kinds, and an added command gets the resolved configuration.
func TestUserTree(t *testing.T) {
	run := tree(t)

	out, errOut, code := run("ping", "--amqp-url", "amqp://me:hunter2@broker:5672/")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "pong amqp://me:xxxxx@broker:5672/ [test.greet]\n", out)
	require.Contains(t, errOut, "url=amqp://me:xxxxx@broker:5672/", "the logger masks passwords even when given the raw URL")
	require.NotContains(t, errOut, "hunter2")

	t.Setenv("WARREN_TEST_GREETING", "hello")
	out, _, code = run("ping")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "hello amqp://guest:xxxxx@localhost:5672/"), out)

	out, _, code = run("enqueue", "test.greet", `{"name":"ann"}`, "--queue", "greetings", "--count", "2", "--quiet")
	require.Equal(t, 0, code)
	require.Equal(t, "2\n", out)
	out, _, code = run("queues", "inspect", "greetings", "--json")
	require.Equal(t, 0, code)
	var info cli.QueueInfo
	require.NoError(t, json.Unmarshal([]byte(out), &info))
	require.Equal(t, 2, info.Ready)

	_, errOut, code = run("enqueue", "demo.noop")
	require.Equal(t, 1, code)
	require.Equal(t, "myapp: unknown kind \"demo.noop\"; registered kinds: test.greet\n", errOut)

	out, _, code = run("version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "myapp v1.2.3 ("), out)

	out, _, code = run("--help")
	require.Equal(t, 0, code)
	for _, c := range []string{"worker", "enqueue", "queues", "dead", "tasks", "workers", "version", "ping"} {
		require.Regexp(t, `(?m)^  `+c+`\s`, out)
	}
	require.NotContains(t, out, "guest:guest", "help shows the default URL without its password")
}
