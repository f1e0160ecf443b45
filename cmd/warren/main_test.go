package main_test

// These tests run the real warren binary, built once in TestMain, against the
// real RabbitMQ that amqptest.URL finds. Each test uses its own queues and
// deletes them at cleanup.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

// bin is the path of the warren binary under test.
var bin string

// buildFlags are the go build flags of the binary under test: the race
// detector when the tests run with it.
var buildFlags []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warren-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "warren")
	if raceEnabled {
		buildFlags = append(buildFlags, "-race")
	}
	build := exec.Command("go", append(append([]string{"build"}, buildFlags...), "-o", bin, ".")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build warren:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// window is the --since of every command that reads the events log: a test
// reads only its own recent events, and the shared broker's log may hold an
// hour of benchmark traffic.
const window = "5m"

// bundle is one test's fixture: a broker URL, a connection for assertions
// and cleanup, and the environment the binary runs with.
type bundle struct {
	t   *testing.T
	url string
	b   broker.Broker
	env []string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	url := amqptest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := amqp.Open(ctx, amqp.Config{URL: url, Logger: discard()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return &bundle{t: t, url: url, b: b, env: baseEnv("WARREN_AMQP_URL=" + url)}
}

// baseEnv is the test process's environment without WARREN_* variables,
// plus extra.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WARREN_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// queue returns a fresh queue name, deleted with its dead letters at cleanup.
func (s *bundle) queue() string {
	s.t.Helper()
	q := "cli-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.b.DeleteQueue(ctx, q)
	})
	return q
}

// result is one finished run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary to completion with the bundle's environment.
func (s *bundle) run(args ...string) result {
	s.t.Helper()
	return runWith(s.t, s.env, "", args...)
}

// runStdin is run with stdin.
func (s *bundle) runStdin(stdin string, args ...string) result {
	s.t.Helper()
	return runWith(s.t, s.env, stdin, args...)
}

// ok runs the binary and requires exit status 0.
func (s *bundle) ok(args ...string) result {
	s.t.Helper()
	r := s.run(args...)
	require.Equal(s.t, 0, r.code, "warren %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// okJSON runs the binary, requires exit status 0 and decodes stdout into v.
func (s *bundle) okJSON(v any, args ...string) {
	s.t.Helper()
	r := s.ok(args...)
	require.NoError(s.t, json.Unmarshal([]byte(r.stdout), v), "stdout of warren %s: %s", strings.Join(args, " "), r.stdout)
}

func runWith(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("run warren %s: %v", strings.Join(args, " "), err)
	}
	require.NoError(t, ctx.Err(), "warren %s did not finish in time; stderr: %s", strings.Join(args, " "), r.stderr)
	return r
}

// fails runs the binary and requires exit status 1 with exactly one line on
// stderr containing every one of want, and nothing on stdout.
func (s *bundle) fails(want []string, args ...string) string {
	s.t.Helper()
	return requireOneLineError(s.t, s.run(args...), want, args)
}

func requireOneLineError(t *testing.T, r result, want []string, args []string) string {
	t.Helper()
	cmdline := "warren " + strings.Join(args, " ")
	require.Equal(t, 1, r.code, "%s: stdout %q stderr %q", cmdline, r.stdout, r.stderr)
	require.Empty(t, r.stdout, cmdline)
	line := strings.TrimSuffix(r.stderr, "\n")
	require.NotEmpty(t, line, cmdline)
	require.NotContains(t, line, "\n", "%s: error is not one line: %q", cmdline, r.stderr)
	for _, w := range want {
		require.Contains(t, line, w, cmdline)
	}
	return line
}

// proc is a warren process running in the background.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	code   int
}

// start runs the binary in the background; cleanup kills it if still running.
func (s *bundle) start(args ...string) *proc {
	s.t.Helper()
	p := &proc{t: s.t, cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = s.env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(s.t, p.cmd.Start())
	go func() {
		err := p.cmd.Wait()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			p.code = exit.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	s.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its status.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("warren %s still running after %s; stderr:\n%s", strings.Join(p.cmd.Args[1:], " "), timeout, p.stderr.String())
		return 0
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
}

// logLine waits for a JSON log line whose msg is msg, and returns it decoded.
// The process must run with --log-format json.
func (p *proc) logLine(msg string, timeout time.Duration) map[string]any {
	p.t.Helper()
	var found map[string]any
	require.Eventually(p.t, func() bool {
		sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
				found = rec
				return true
			}
		}
		return false
	}, timeout, 20*time.Millisecond, "no log line %q; stderr:\n%s", msg, p.stderr.String())
	return found
}

// syncBuffer is a bytes.Buffer safe for a writer and concurrent readers.
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

// stats reads a queue's figures through the test's own connection.
func (s *bundle) stats(q string) broker.QueueStats {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.b.Stats(ctx, q)
	require.NoError(s.t, err)
	return st
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
