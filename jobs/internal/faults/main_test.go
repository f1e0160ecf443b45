package faults_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/jobs/internal/faults"
)

var reportFlag = flag.String("faults.report", "", "write the results table to this Markdown file (also $WARREN_FAULTS_REPORT; a relative path is taken from the module root)")

// workerBin is the faultworker program, built once by TestMain (with -race
// when the tests run with -race, so the worker's own races are caught too).
var workerBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "warren-faultworker-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	workerBin = filepath.Join(dir, "faultworker")
	if err := buildWorker(workerBin); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build faultworker:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: write report:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func buildWorker(out string) error {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			return err
		}
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/warrenjobs/warren/jobs/internal/faults/faultworker")
	cmd := exec.Command(gobin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, buf.String())
	}
	return nil
}

// results collects every scenario's row for the report.
var results struct {
	mu   sync.Mutex
	rows []faults.Row
}

func addResult(r faults.Row) {
	results.mu.Lock()
	results.rows = append(results.rows, r)
	results.mu.Unlock()
}

func writeReport() error {
	path := *reportFlag
	if path == "" {
		path = os.Getenv("WARREN_FAULTS_REPORT")
	}
	if path == "" {
		return nil
	}
	if !filepath.IsAbs(path) {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		path = filepath.Join(root, path)
	}
	results.mu.Lock()
	rows := append([]faults.Row(nil), results.rows...)
	results.mu.Unlock()
	race := ""
	if raceEnabled {
		race = ", -race"
	}
	command := "WARREN_FAULTS_REPORT=docs/faults.md go test -race -count=1 ./jobs/internal/faults"
	if os.Getenv("WARREN_SOAK") != "" {
		command = "WARREN_SOAK=1 WARREN_FAULTS_REPORT=docs/faults.md go test -race -count=1 -timeout 60m ./jobs/internal/faults"
	}
	h := faults.ReportHeader{
		Generated: time.Now(),
		Command:   command,
		Machine: fmt.Sprintf("%d CPUs, %s/%s, %s%s, RabbitMQ %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
			runtime.Version(), race, brokerVersion()),
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := faults.WriteReport(&buf, h, rows); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// brokerVersion asks the shared broker for its version, for the report.
var sharedURL struct {
	mu  sync.Mutex
	url string
}

func brokerVersion() string {
	sharedURL.mu.Lock()
	url := sharedURL.url
	sharedURL.mu.Unlock()
	if url == "" {
		return "(unknown)"
	}
	conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: amqp091.DefaultDial(3 * time.Second)})
	if err != nil {
		return "(unknown)"
	}
	defer conn.Close()
	if v, ok := conn.Properties["version"].(string); ok {
		return v
	}
	return "(unknown)"
}

// budget bounds how many scenarios run at once whatever -parallel says: the
// machine has two cores, shared with other test packages and the broker.
// Heavy scenarios (many tasks, rate measurements) take the whole budget.
var budget = newTokens(2)

type tokens struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int
}

func newTokens(n int) *tokens {
	t := &tokens{free: n}
	t.cond = sync.NewCond(&t.mu)
	return t
}

func (t *tokens) acquire(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.free < n {
		t.cond.Wait()
	}
	t.free -= n
}

func (t *tokens) release(n int) {
	t.mu.Lock()
	t.free += n
	t.mu.Unlock()
	t.cond.Broadcast()
}
