package cli

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	require.NoError(t, checkURL("amqp://guest:guest@localhost:5672/"))
	require.NoError(t, checkURL("amqps://u:p@broker.example:5671/vhost"))
	for raw, want := range map[string]string{
		"amqp://u:secret@host:port/": `invalid AMQP URL "amqp://u:xxxxx@host:port/": invalid port`,
		"http://u:secret@host/":      "scheme must be amqp or amqps",
		"amqp://u:secret@/":          "no host",
		"localhost:5672":             "scheme must be amqp or amqps",
	} {
		err := checkURL(raw)
		require.ErrorContains(t, err, want, raw)
		require.NotContains(t, err.Error(), "secret", raw)
	}
}

func TestParseQueues(t *testing.T) {
	t.Parallel()
	got, err := parseQueues("a, b:3 ,c:1")
	require.NoError(t, err)
	require.Equal(t, map[string]int{"a": 1, "b": 3, "c": 1}, got)
	for in, want := range map[string]string{
		"":        "name at least one queue",
		"a:0":     "weight must be a whole number",
		"a:-1":    "weight must be a whole number",
		"a:1.5":   "weight must be a whole number",
		"a.b":     "invalid queue name",
		":3":      "invalid queue name",
		"a,b,a:2": `queue "a" named twice`,
	} {
		_, err := parseQueues(in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a; b; c", oneLine(errors.Join(errors.New("a"), errors.New("b\nc")).Error()))
}

func TestEnvPrecedence(t *testing.T) {
	// Not parallel: sets environment variables.
	run := func(args ...string) (string, *cobra.Command) {
		t.Helper()
		var got string
		cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
		cmd.Flags().StringVar(&got, "thing", "default", "")
		BindEnv(cmd, "thing", "WARREN_TEST_THING")
		root := &cobra.Command{Use: "root", PersistentPreRunE: func(c *cobra.Command, _ []string) error { return applyEnv(c) }}
		root.AddCommand(cmd)
		root.SetArgs(append([]string{"x"}, args...))
		require.NoError(t, root.Execute())
		return got, cmd
	}
	got, cmd := run()
	require.Equal(t, "default", got)
	require.Contains(t, cmd.Flags().Lookup("thing").Usage, "[$WARREN_TEST_THING]")
	t.Setenv("WARREN_TEST_THING", "from-env")
	got, _ = run()
	require.Equal(t, "from-env", got)
	got, _ = run("--thing", "from-flag")
	require.Equal(t, "from-flag", got)
}

func TestLoggerRedacts(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log, err := newLogger(&buf, format, "debug")
		require.NoError(t, err)
		log.With("base", "amqp://a:secret1@h/").WithGroup("g").Info("dial amqp://a:secret2@h/ failed",
			"url", "amqp://a:secret3@h/", "err", errors.New("amqp://a:secret4@h/: refused"),
			slog.Group("nested", "u", "amqp://a:secret5@h/"))
		out := buf.String()
		require.NotContains(t, out, "secret", format)
		require.Equal(t, 5, strings.Count(out, "a:xxxxx@h/"), "%s: %s", format, out)
	}
	_, err := newLogger(&bytes.Buffer{}, "xml", "info")
	require.ErrorContains(t, err, `invalid --log-format "xml"`)
	_, err = newLogger(&bytes.Buffer{}, "text", "loud")
	require.ErrorContains(t, err, `invalid --log-level "loud"`)
}
