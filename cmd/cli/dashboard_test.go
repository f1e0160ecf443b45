package cli_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/cmd/cli"
	"github.com/warrenjobs/warren/jobs"
)

// syncBuffer is a bytes.Buffer safe to write from the command's goroutines
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDashboardCommand runs `dashboard args...` on an in-memory broker until
// the test ends, and returns its base URL once it listens.
func startDashboardCommand(t *testing.T, args ...string) (base string, stderr *syncBuffer, stop func() int) {
	t.Helper()
	mem := memory.New(memory.Config{})
	t.Cleanup(func() { _ = mem.Close() })
	root := cli.NewRootCommand(jobs.NewWorkers(), &cli.Options{
		Name: "warren",
		Open: func(context.Context, string, *slog.Logger) (broker.Broker, error) { return keepOpen{mem}, nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- cli.Run(ctx, root, append([]string{"dashboard", "--addr", "127.0.0.1:0"}, args...), &bytes.Buffer{}, stderr)
	}()
	var once sync.Once
	exit := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case exit = <-code:
			case <-time.After(10 * time.Second):
				t.Errorf("dashboard command did not stop within 10s")
			}
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	listening := regexp.MustCompile(`url=http://\S*:(\d+)/`)
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(stderr.String())
		if m != nil {
			base = "http://127.0.0.1:" + m[1] + "/"
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "dashboard listening: %s", stderr)
	return base, stderr, stop
}

func TestDashboardCommandServes(t *testing.T) {
	t.Parallel()
	base, stderr, stop := startDashboardCommand(t, "--basic-auth", "ops:pa:ss", "--read-only")
	resp, err := http.Get(base + "healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = http.Get(base + "api/queues")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	req, _ := http.NewRequest(http.MethodGet, base+"api/queues", nil)
	req.SetBasicAuth("ops", "pa:ss")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	req, _ = http.NewRequest(http.MethodPost, base+"api/queues/q/purge", nil)
	req.SetBasicAuth("ops", "pa:ss")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "--read-only")

	require.Equal(t, 0, stop(), "a signal (cancelled context) stops it cleanly")
	require.NotContains(t, stderr.String(), "pa:ss", "the password is never logged")
}

func TestDashboardCommandAuthFromEnv(t *testing.T) {
	t.Setenv("WARREN_DASHBOARD_AUTH", "env-user:env-pass")
	base, _, _ := startDashboardCommand(t)
	resp, err := http.Get(base + "api/workers")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodGet, base+"api/workers", nil)
	req.SetBasicAuth("env-user", "env-pass")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestDashboardCommandRefusesOpenAddressWithoutAuth(t *testing.T) {
	t.Parallel()
	run := func(args ...string) (string, int) {
		var stderr bytes.Buffer
		root := cli.NewRootCommand(jobs.NewWorkers(), &cli.Options{
			Name: "warren",
			Open: func(context.Context, string, *slog.Logger) (broker.Broker, error) {
				t.Error("the broker is not opened for a refused address")
				return nil, context.Canceled
			},
		})
		code := cli.Run(context.Background(), root, append([]string{"dashboard"}, args...), &bytes.Buffer{}, &stderr)
		return stderr.String(), code
	}
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		stderr, code := run("--addr", addr)
		require.Equal(t, 1, code, addr)
		require.Contains(t, stderr, "refusing to serve the dashboard without authentication", addr)
	}
	stderr, code := run("--basic-auth", "nocolon")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "invalid --basic-auth")
}

func TestDashboardCommandInsecureNoAuth(t *testing.T) {
	t.Parallel()
	// Listening on all interfaces is allowed when asked for explicitly; the
	// test still only talks to loopback.
	_, stderr, stop := startDashboardCommand(t, "--addr", "0.0.0.0:0", "--insecure-no-auth")
	require.Contains(t, stderr.String(), "without authentication")
	require.Equal(t, 0, stop())
}
