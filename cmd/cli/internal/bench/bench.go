package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/jobs"
)

// Scenario names, in the order "all" runs them.
var Scenarios = []string{"enqueue-16", "latency-1", "drain", "events-cost", "e2e-latency", "memory"}

// Config configures a run. URL is required; every other field has a default.
type Config struct {
	// URL is the broker, which must be on this machine (a loopback address).
	URL string
	// Scenarios to run, from Scenarios. Default: all of them.
	Scenarios []string
	// N sizes the scenarios (see the package doc). Default: 100,000.
	N int
	// Prefetch of the drain, e2e-latency and memory consumers, warren's and
	// raw's alike. Default: 300.
	Prefetch int
	// Concurrency of warren's Runner. Default: 32.
	Concurrency int
	// Runs is how many times every scenario runs; each figure reported is
	// the median of the runs, each ratio the median of the runs' ratios.
	// Default: 1.
	Runs int
	// Child starts this program as a memory-scenario worker process, with
	// args to pass to RunChild (the caller maps them to a command line that
	// ends in RunChild) and the broker URL in its environment. Required by
	// the memory scenario only.
	Child func(ctx context.Context, args []string) *exec.Cmd
	// Progress receives one line per phase; nil for none.
	Progress io.Writer
	// ProfileDir, if set, receives a CPU profile of every measured phase,
	// named after it (enqueue-16.warren.pprof, drain.raw.pprof, ...).
	ProfileDir string
}

// Defaults.
const (
	DefaultN           = 100_000
	DefaultPrefetch    = 300
	DefaultConcurrency = 32

	argsBytes   = 200  // size of every task's JSON args
	confirmWin  = 1000 // raw publisher's confirm window
	enqueueCall = 16   // concurrent Enqueue callers
	manyBatch   = 1000 // EnqueueMany batch size
	maxLatency1 = 2000 // latency-1 samples per side
	e2eSenders  = 64   // open-loop senders
	memFactor   = 10   // memory backlog = memFactor × N
)

func (c Config) withDefaults() Config {
	if len(c.Scenarios) == 0 {
		c.Scenarios = Scenarios
	}
	if c.N == 0 {
		c.N = DefaultN
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Runs == 0 {
		c.Runs = 1
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q (known: all, %s)", s, strings.Join(Scenarios, ", ")))
		}
		if s == "memory" && c.Child == nil {
			errs = append(errs, errors.New("the memory scenario needs Config.Child"))
		}
	}
	if c.N < 10 || c.N > 10_000_000 {
		errs = append(errs, fmt.Errorf("n %d: want 10 to 10,000,000", c.N))
	}
	if c.Runs < 1 || c.Runs > 9 {
		errs = append(errs, fmt.Errorf("runs %d: want 1 to 9", c.Runs))
	}
	if c.Prefetch < 1 || c.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("prefetch %d: want 1 to 65535", c.Prefetch))
	}
	if c.Concurrency < 1 || c.Concurrency > 10_000 {
		errs = append(errs, fmt.Errorf("concurrency %d: want 1 to 10,000", c.Concurrency))
	}
	if err := CheckLocal(c.URL); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CheckLocal accepts only a broker URL whose host is a loopback address (or
// localhost): benchmarks put load on the broker, and load stays on this
// machine.
func CheckLocal(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("bench: the broker URL does not parse")
	}
	host := u.Hostname()
	if host == "localhost" || host == "" { // amqp:// alone means localhost
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("bench: broker host %q is not a loopback address: benchmarks run only against a broker on this machine", host)
}

// Run runs the configured scenarios one after another and reports them. A
// scenario that fails ends the run with its error; queues it declared are
// deleted either way.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("bench: profile directory: %w", err)
		}
	}
	start := time.Now()
	rep := &Report{
		StartedAt: start.UTC().Truncate(time.Second),
		Machine: Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH,
			Go: runtime.Version(), LoadStart: loadAvg()},
		Settings: Settings{N: cfg.N, Runs: cfg.Runs, Prefetch: cfg.Prefetch, Concurrency: cfg.Concurrency, ArgsBytes: argsBytes},
	}
	env, err := newEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer env.close()
	loads := sampleLoad(ctx)
	defer loads.stop()
	rep.Broker = env.version
	runs := make([][]Scenario, len(cfg.Scenarios)) // per scenario, one result per run
	for run := range cfg.Runs {
		for i, name := range cfg.Scenarios {
			env.logf("%s: start (run %d of %d)", name, run+1, cfg.Runs)
			t0 := time.Now()
			s, err := scenarioFuncs[name](ctx, env)
			env.cleanup()
			if err != nil {
				return nil, fmt.Errorf("bench: scenario %s: %w", name, err)
			}
			s.Name = name
			s.Seconds = round(time.Since(t0).Seconds())
			runs[i] = append(runs[i], s)
		}
	}
	for _, rs := range runs {
		rep.Scenarios = append(rep.Scenarios, median(rs))
	}
	env.cleanup()
	rep.Queues = env.deleted
	rep.Machine.LoadEnd = loadAvg()
	rep.Machine.LoadMean, rep.Machine.LoadMax = loads.stop()
	rep.Seconds = round(time.Since(start).Seconds())
	return rep, nil
}

var scenarioFuncs = map[string]func(context.Context, *env) (Scenario, error){
	"enqueue-16":  enqueue16,
	"latency-1":   latency1,
	"drain":       drain,
	"events-cost": eventsCost,
	"e2e-latency": e2eLatency,
	"memory":      memory,
}

// env is what scenarios share: the configuration, a raw connection for
// setup and cleanup, and the queues to delete.
type env struct {
	cfg     Config
	version string
	raw     *amqp091.Connection // setup, prefill and cleanup
	run     string              // random tag of this run, in every queue name

	rawQueues    []string // raw queue names to delete
	warrenQueues []string // warren logical queue names to delete
	deleted      []string // AMQP queue names deleted so far
}

func newEnv(ctx context.Context, cfg Config) (*env, error) {
	conn, err := dialRaw(cfg.URL, "warren bench setup")
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, raw: conn, run: randomHex(4)}
	e.version = "RabbitMQ"
	if v, ok := conn.Properties["version"].(string); ok {
		e.version += " " + v
	}
	return e, nil
}

func (e *env) close() {
	e.cleanup()
	_ = e.raw.Close()
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.cfg.Progress, "bench: "+format+"\n", args...)
}

// warrenQueue returns a fresh logical queue name, deleted at cleanup.
func (e *env) warrenQueue(scenario string) string {
	q := fmt.Sprintf("bench-%s-%s-%s", scenario, e.run, randomHex(3))
	e.warrenQueues = append(e.warrenQueues, q)
	return q
}

// rawQueue declares a fresh durable quorum queue for raw amqp091-go,
// deleted at cleanup.
func (e *env) rawQueue(scenario string) (string, error) {
	q := fmt.Sprintf("warren-bench-raw-%s-%s-%s", scenario, e.run, randomHex(3))
	e.rawQueues = append(e.rawQueues, q)
	ch, err := e.raw.Channel()
	if err != nil {
		return "", err
	}
	defer ch.Close()
	_, err = ch.QueueDeclare(q, true, false, false, false, amqp091.Table{"x-queue-type": "quorum"})
	return q, err
}

// cleanup deletes every queue declared so far, warren's with their
// dead-letter queues.
func (e *env) cleanup() {
	if len(e.rawQueues)+len(e.warrenQueues) == 0 {
		return
	}
	conn := e.raw
	if conn.IsClosed() {
		var err error
		if conn, err = dialRaw(e.cfg.URL, "warren bench cleanup"); err != nil {
			e.logf("cleanup: %v", err)
			return
		}
		e.raw = conn
	}
	ch, err := conn.Channel()
	if err != nil {
		e.logf("cleanup: %v", err)
		return
	}
	defer ch.Close()
	names := append([]string(nil), e.rawQueues...)
	for _, q := range e.warrenQueues {
		names = append(names, "warren."+q, "warren."+q+".dead")
	}
	for _, q := range names {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			e.logf("cleanup: delete %s: %v", q, err)
			if ch, err = conn.Channel(); err != nil {
				return
			}
			continue
		}
		e.deleted = append(e.deleted, q)
	}
	e.rawQueues, e.warrenQueues = nil, nil
}

// openWarren opens a warren broker for one side of a scenario.
func (e *env) openWarren(ctx context.Context) (*amqp.Broker, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return amqp.Open(ctx, amqp.Config{URL: e.cfg.URL, Logger: discard, ConnectionName: "warren bench"})
}

var discard = slog.New(slog.DiscardHandler)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// noop is the kind every scenario enqueues and runs. Its JSON form is
// argsBytes long: T (the intended send time, Unix nanoseconds, in the
// e2e-latency scenario) is always 19 digits, and Pad fills the rest.
type noop struct {
	T   int64  `json:"t"`
	Pad string `json:"pad"`
}

func (noop) Kind() string { return "warren.bench.noop" }

// pad makes noop's JSON exactly argsBytes long.
var pad = func() string {
	b, _ := json.Marshal(noop{T: time.Now().UnixNano()})
	return strings.Repeat("x", argsBytes-len(b))
}()

func newArgs(t time.Time) noop { return noop{T: t.UnixNano(), Pad: pad} }

// rawBody is a raw message's body: the same 200 bytes warren sends.
func rawBody(t time.Time) []byte {
	b, _ := json.Marshal(newArgs(t))
	return b
}

// workersFor returns a registry running f for every noop task.
func workersFor(f func(ctx context.Context, job *jobs.Job[noop]) error) *jobs.Workers {
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(f))
	return w
}
