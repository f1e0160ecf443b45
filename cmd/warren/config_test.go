package main_test

import (
	"encoding/json"
	"net"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	env := baseEnv("WARREN_AMQP_URL=amqp://nobody:pw@127.0.0.1:1/") // needs no broker
	r := runWith(t, env, "", "version")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `^warren \S+ \(go1\.\d+.*, `+runtime.GOOS+`/`+runtime.GOARCH+`\)\n$`, r.stdout)

	r = runWith(t, env, "", "version", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var v struct{ Version, Go, OS, Arch string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	require.NotEmpty(t, v.Version)
	require.Equal(t, runtime.Version(), v.Go)

	r = runWith(t, env, "", "--version")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, v.Version)
}

// closedPortURL returns an AMQP URL with a password on a loopback port that
// nothing listens on.
func closedPortURL(t *testing.T, password string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "amqp://warren:" + password + "@" + addr + "/"
}

// TestBrokerDown: every broker command fails fast with one line naming the
// broker, never its password.
func TestBrokerDown(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-Passw0rd"
	down := closedPortURL(t, secret)
	env := baseEnv("WARREN_AMQP_URL=" + down)
	host := strings.TrimSuffix(strings.SplitN(down, "@", 2)[1], "/")
	for _, args := range [][]string{
		{"queues", "ls"},
		{"queues", "inspect", "q"},
		{"dead", "ls", "q"},
		{"enqueue", "demo.noop"},
		{"worker", "--queues", "q"},
		{"tasks", "ls"},
		{"workers", "ls"},
	} {
		began := time.Now()
		r := runWith(t, env, "", args...)
		line := requireOneLineError(t, r, []string{"connect to amqp://warren:xxxxx@" + host}, args)
		require.NotContains(t, line, secret)
		require.Less(t, time.Since(began), 20*time.Second, "warren %v", args)
	}
}

func TestPasswordIsNeverPrinted(t *testing.T) {
	t.Parallel()
	s := setup(t)
	const secret = "s3cret-Passw0rd"

	// Malformed URLs: the error says what is wrong without the password.
	for _, bad := range []string{
		"amqp://warren:" + secret + "@host:notaport/",
		"http://warren:" + secret + "@host/",
		"amqp://warren:" + secret + "@/",
	} {
		args := []string{"queues", "ls", "--amqp-url", bad}
		line := requireOneLineError(t, runWith(t, s.env, "", args...), []string{"invalid AMQP URL", "warren:xxxxx@"}, args)
		require.NotContains(t, line, secret)
	}

	// Wrong password on a real broker.
	u, err := url.Parse(s.url)
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), secret)
	args := []string{"queues", "ls", "--amqp-url", u.String()}
	r := runWith(t, s.env, "", args...)
	line := requireOneLineError(t, r, []string{"connect to"}, args)
	require.NotContains(t, line, secret)

	// A running worker logs where it connected, redacted.
	q := s.queue()
	w := s.start("worker", "--queues", q, "--log-format", "json", "--log-level", "debug")
	connected := w.logLine("connected", 20*time.Second)
	real, err := url.Parse(s.url)
	require.NoError(t, err)
	if realPW, has := real.User.Password(); has {
		real.User = url.UserPassword(real.User.Username(), "xxxxx")
		w.signal(syscall.SIGTERM)
		require.Equal(t, 0, w.wait(20*time.Second), w.stderr.String())
		require.NotContains(t, w.stderr.String(), ":"+realPW+"@")
	} else {
		w.signal(syscall.SIGTERM)
		require.Equal(t, 0, w.wait(20*time.Second), w.stderr.String())
	}
	require.Equal(t, real.String(), connected["url"])
}

// TestConfigPrecedence: flag > environment > default.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	s := setup(t)
	down := closedPortURL(t, "pw")

	// The flag beats the environment.
	env := baseEnv("WARREN_AMQP_URL=" + down)
	r := runWith(t, env, "", "queues", "ls", "--since", window, "--json", "--amqp-url", s.url)
	require.Equal(t, 0, r.code, r.stderr)

	// The environment beats the default (which would reach the local broker).
	r = runWith(t, env, "", "queues", "ls")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, strings.TrimSuffix(strings.SplitN(down, "@", 2)[1], "/"))

	// Environment values are checked like flags, and named in the error.
	requireOneLineError(t, runWith(t, baseEnv("WARREN_AMQP_URL="+s.url, "WARREN_CONCURRENCY=lots"), "", "worker"),
		[]string{`invalid $WARREN_CONCURRENCY "lots"`}, []string{"worker"})
	requireOneLineError(t, runWith(t, baseEnv("WARREN_AMQP_URL="+s.url, "WARREN_LOG_LEVEL=loud"), "", "queues", "ls"),
		[]string{`invalid --log-level "loud"`}, []string{"queues", "ls"})
	s.fails([]string{`invalid --log-format "xml"`}, "queues", "ls", "--log-format", "xml")

	// WARREN_LOG_FORMAT=json switches the logs to JSON; WARREN_QUEUES picks the queues.
	q := s.queue()
	s.ok("enqueue", "demo.echo", `{"msg":"hello from the test"}`, "--queue", q)
	env = baseEnv("WARREN_AMQP_URL="+s.url, "WARREN_LOG_FORMAT=json", "WARREN_QUEUES="+q, "WARREN_EXIT_WHEN_IDLE=500ms")
	r = runWith(t, env, "", "worker")
	require.Equal(t, 0, r.code, r.stderr)
	for _, l := range lines(r.stderr) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "log line is not JSON: %s", l)
	}
	require.Contains(t, r.stderr, `"queues":{"`+q+`":1}`)
	require.Contains(t, r.stderr, `"msg":"demo.echo","echo":"hello from the test"`, "demo.echo logs its message")
	require.Equal(t, 0, s.stats(q).Ready)
}
