package faults_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
	"github.com/warrenjobs/warren/jobs"
	"github.com/warrenjobs/warren/jobs/internal/faults"
)

var raceEnabled bool

// logger is quiet unless WARREN_TEST_LOG=1.
func logger() *slog.Logger {
	if os.Getenv("WARREN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// bundle is one scenario's world: a broker URL, a queue, a history
// directory, the test's own broker connection, and the processes started.
type bundle struct {
	t     *testing.T
	url   string // the broker, reached directly
	queue string
	dir   string // record files (*.rec) and process logs (*.log)
	ctl   *amqp.Broker
	began time.Time

	mu    sync.Mutex
	procs []*proc
	seq   int
}

type setupOpts struct {
	url    string // default: the shared broker
	weight int    // budget tokens; default 1
}

// setup acquires the scenario's share of the machine and returns a fresh
// bundle. The queue is deleted at the end (unless it lives on a throwaway
// node, which goes away anyway).
func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	weight := max(o.weight, 1)
	budget.acquire(weight)
	t.Cleanup(func() { budget.release(weight) })

	url := o.url
	shared := url == ""
	if shared {
		url = amqptest.URL(t)
		sharedURL.mu.Lock()
		sharedURL.url = url
		sharedURL.mu.Unlock()
	}
	x := &bundle{
		t:     t,
		url:   url,
		queue: "faults-" + strings.ReplaceAll(uuid.NewString()[:13], "-", ""),
		dir:   t.TempDir(),
		began: time.Now(),
	}
	x.ctl = x.open(url)
	if shared {
		q := x.queue
		t.Cleanup(func() {
			b := x.open(url)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := b.DeleteQueue(ctx, q); err != nil {
				t.Logf("cleanup: delete queue %s: %v", q, err)
			}
		})
	}
	t.Cleanup(x.reapProcs)
	return x
}

// open connects a Broker for the test, closed at cleanup.
func (x *bundle) open(url string, tweak ...func(*amqp.Config)) *amqp.Broker {
	x.t.Helper()
	cfg := amqp.Config{URL: url, Logger: logger(), ReconnectInterval: 250 * time.Millisecond, DialTimeout: 5 * time.Second}
	for _, f := range tweak {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := amqp.Open(ctx, cfg)
	if err != nil {
		x.t.Fatalf("open broker: %v", err)
	}
	x.t.Cleanup(func() { _ = b.Close() })
	return b
}

// producer returns a Producer on b recording into a ledger of its own.
func (x *bundle) producer(b broker.Broker, timeout time.Duration) *faults.Producer {
	x.t.Helper()
	c, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: logger()})
	if err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &faults.Producer{Client: c, Ledger: x.recorder("producer"), Queue: x.queue, Timeout: timeout}
}

// recorder opens a record file of the history.
func (x *bundle) recorder(name string) *faults.Recorder {
	x.t.Helper()
	r, err := faults.OpenRecorder(x.path(name, faults.RecordExt))
	if err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(func() { _ = r.Close() })
	return r
}

// path returns a fresh file name in the history directory.
func (x *bundle) path(name, ext string) string {
	x.mu.Lock()
	x.seq++
	n := x.seq
	x.mu.Unlock()
	return filepath.Join(x.dir, fmt.Sprintf("%s-%03d%s", name, n, ext))
}

// history reads every record file, and the dead letters when withDead.
func (x *bundle) history(withDead bool) *faults.History {
	x.t.Helper()
	entries, err := faults.ReadHistory(x.dir)
	if err != nil {
		x.t.Fatal(err)
	}
	h := faults.NewHistory()
	h.Add(entries)
	if withDead {
		h.AddDead(x.dead())
	}
	return h
}

// dead reads the queue's dead letters (all of them, without removing any).
func (x *bundle) dead() []*broker.Message {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := x.ctl.Dead(ctx, x.queue, 65535)
	if err != nil && !errors.Is(err, broker.ErrQueueNotFound) {
		x.t.Fatalf("read dead letters: %v", err)
	}
	return d
}

func (x *bundle) stats() broker.QueueStats {
	x.t.Helper()
	var st broker.QueueStats
	var err error
	for range 3 { // the control connection may be recovering from a fault
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err = x.ctl.Stats(ctx, x.queue)
		cancel()
		if err == nil {
			return st
		}
		time.Sleep(time.Second)
	}
	x.t.Fatalf("stats of %s: %v", x.queue, err)
	return st
}

// eventually polls cond every 200 ms until it holds, or fails the test
// after within.
func (x *bundle) eventually(within time.Duration, what string, cond func() bool) {
	x.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			x.dumpLogs()
			x.t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitSettled waits until every confirmed task has completed or been
// dead-lettered (the dead-letter queue is read only when withDead).
func (x *bundle) waitSettled(within time.Duration, withDead bool) {
	x.t.Helper()
	var last faults.Result
	deadline := time.Now().Add(within)
	for {
		h := x.history(false)
		if withDead {
			h.AddDead(x.deadQuick())
		}
		last = faults.Check(h)
		if len(last.Lost) == 0 {
			return
		}
		if time.Now().After(deadline) {
			x.dumpLogs()
			x.t.Fatalf("after %s, tasks still neither run nor dead-lettered: %s", within, last)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// deadQuick reads the dead letters, tolerating a failure (nil).
func (x *bundle) deadQuick() []*broker.Message {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, _ := x.ctl.Dead(ctx, x.queue, 65535)
	return d
}

// report checks the history, logs and records the scenario's row, and fails
// the test if anything was lost or unexpected.
func (x *bundle) report(scenario, injected string, h *faults.History, notes string) faults.Result {
	x.t.Helper()
	r := faults.Check(h)
	row := faults.NewRow(scenario, injected, r, time.Since(x.began), notes)
	x.t.Logf("RESULT %s", row)
	x.t.Logf("checker: %s", r)
	addResult(row)
	if len(r.Lost) > 0 {
		x.dumpLogs()
		x.t.Errorf("lost %d tasks: %s", len(r.Lost), r)
	}
	if len(r.Unexpected) > 0 {
		x.t.Errorf("%d unexpected tasks: %s", len(r.Unexpected), r)
	}
	if r.Confirmed == 0 {
		x.t.Errorf("no task was confirmed: the scenario checked nothing")
	}
	return r
}

// proc is a faultworker process.
type proc struct {
	name   string
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed

	mu       sync.Mutex
	signaled bool // the test killed or stopped it
}

type workerOpts struct {
	url         string // default x.url
	concurrency int    // default 8
	prefetch    int    // default 16
	mode        faults.Mode
	sleep       time.Duration
	heartbeat   time.Duration
	maxPayload  int
	stats       string
	extra       []string
}

// startWorker starts a faultworker consuming the bundle's queue, recording
// into a fresh record file.
func (x *bundle) startWorker(o workerOpts) *proc {
	x.t.Helper()
	url := o.url
	if url == "" {
		url = x.url
	}
	args := []string{"work", "-url", url, "-queue", x.queue,
		"-record", x.path("worker", faults.RecordExt),
		"-concurrency", strconv.Itoa(cmp(o.concurrency, 8)),
		"-prefetch", strconv.Itoa(cmp(o.prefetch, 16)),
		"-mode", string(o.mode),
		"-sleep", o.sleep.String(),
	}
	if o.heartbeat > 0 {
		args = append(args, "-heartbeat", o.heartbeat.String(), "-dial-timeout", (2 * o.heartbeat).String())
	}
	if o.maxPayload > 0 {
		args = append(args, "-max-payload", strconv.Itoa(o.maxPayload))
	}
	if o.stats != "" {
		args = append(args, "-stats", o.stats)
	}
	args = append(args, o.extra...)
	return x.spawn("worker", args...)
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// spawn starts the faultworker program with args; its output goes to a log
// file in the history directory.
func (x *bundle) spawn(name string, args ...string) *proc {
	x.t.Helper()
	p := &proc{name: name, log: x.path(name, ".log"), exited: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		x.t.Fatal(err)
	}
	p.cmd = exec.Command(workerBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = procAttr()
	p.cmd.Env = append(os.Environ(), "GORACE=halt_on_error=0")
	if err := p.cmd.Start(); err != nil {
		out.Close()
		x.t.Fatalf("start faultworker: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	x.mu.Lock()
	x.procs = append(x.procs, p)
	x.mu.Unlock()
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	p.signaled = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s (pid %d) still alive 30s after SIGKILL", p.name, p.pid())
	}
}

// stop sends SIGTERM and waits up to within for the exit; it returns the
// exit error (nil for status 0).
func (p *proc) stop(t testing.TB, within time.Duration) error {
	t.Helper()
	p.mu.Lock()
	p.signaled = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(within):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("%s (pid %d) did not exit within %s of SIGTERM", p.name, p.pid(), within)
	}
}

// exitedOnItsOwn reports a process that ended without the test asking.
func (p *proc) exitedOnItsOwn() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.alive() && !p.signaled
}

// stopWorkers stops every running worker with SIGTERM and requires clean exits.
func (x *bundle) stopWorkers() {
	x.t.Helper()
	x.mu.Lock()
	procs := append([]*proc(nil), x.procs...)
	x.mu.Unlock()
	for _, p := range procs {
		if p.alive() && p.name == "worker" {
			if err := p.stop(x.t, 45*time.Second); err != nil {
				x.t.Errorf("%s pid %d: warm shutdown: %v\n%s", p.name, p.pid(), err, tail(p.log, 20))
			}
		}
	}
}

// reapProcs kills what still runs, then fails the test for a process that
// died on its own or reported a data race.
func (x *bundle) reapProcs() {
	x.mu.Lock()
	procs := append([]*proc(nil), x.procs...)
	x.mu.Unlock()
	for _, p := range procs {
		if p.exitedOnItsOwn() && p.err != nil {
			x.t.Errorf("%s pid %d exited on its own: %v\n%s", p.name, p.pid(), p.err, tail(p.log, 30))
		}
	}
	for _, p := range procs {
		if p.alive() {
			p.kill(x.t)
		}
	}
	for _, p := range procs {
		data, _ := os.ReadFile(p.log)
		if i := strings.Index(string(data), "WARNING: DATA RACE"); i >= 0 {
			end := min(len(data), i+6000)
			x.t.Errorf("%s pid %d reported a data race:\n%s", p.name, p.pid(), data[i:end])
		}
		if i := strings.Index(string(data), "panic: "); i >= 0 && !strings.Contains(string(data[i:min(len(data), i+200)]), "faults: task") {
			end := min(len(data), i+4000)
			x.t.Errorf("%s pid %d crashed:\n%s", p.name, p.pid(), data[i:end])
		}
	}
}

// dumpLogs logs the end of every process log (on failure).
func (x *bundle) dumpLogs() {
	x.mu.Lock()
	procs := append([]*proc(nil), x.procs...)
	x.mu.Unlock()
	for _, p := range procs {
		x.t.Logf("--- %s pid %d (%s):\n%s", p.name, p.pid(), filepath.Base(p.log), tail(p.log, 15))
	}
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logCount counts occurrences of s in the logs of the processes named name.
func (x *bundle) logCount(name, s string) int {
	x.mu.Lock()
	procs := append([]*proc(nil), x.procs...)
	x.mu.Unlock()
	n := 0
	for _, p := range procs {
		if p.name != name {
			continue
		}
		data, _ := os.ReadFile(p.log)
		n += strings.Count(string(data), s)
	}
	return n
}

// tasks returns n Tasks numbered from first.
func tasks(first, n int, f func(*faults.Task)) []faults.Task {
	out := make([]faults.Task, n)
	for i := range out {
		out[i] = faults.Task{Seq: first + i}
		if f != nil {
			f(&out[i])
		}
	}
	return out
}
