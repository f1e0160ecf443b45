package jobstest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/jobs"
)

// Enqueued is one task the code under test enqueued.
type Enqueued struct {
	ID         string
	Kind       string
	Queue      string
	Args       json.RawMessage
	RunAt      time.Time // zero: immediately
	MaxRetries int       // -1: the runner's default
	Timeout    time.Duration
	Meta       map[string]string
}

// Recorder remembers every task a Client enqueued. Safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	seen []Enqueued
}

// All returns every recorded task, in enqueue order.
func (r *Recorder) All() []Enqueued {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// Kind returns the recorded tasks of one kind.
func (r *Recorder) Kind(kind string) []Enqueued {
	var out []Enqueued
	for _, e := range r.All() {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (r *Recorder) middleware(next jobs.EnqueueFunc) jobs.EnqueueFunc {
	return func(ctx context.Context, msgs []*broker.Message) error {
		if err := next(ctx, msgs); err != nil {
			return err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, m := range msgs {
			r.seen = append(r.seen, Enqueued{ID: m.ID, Kind: m.Kind, Queue: m.Queue, Args: slices.Clone(m.Args),
				RunAt: m.RunAt, MaxRetries: m.MaxRetries, Timeout: m.Timeout, Meta: m.Meta})
		}
		return nil
	}
}

// Env is an in-memory warren for one test: a broker, a client recording its
// enqueues, and the Recorder.
type Env struct {
	Broker   *memory.Broker
	Client   *jobs.Client
	Recorder *Recorder
}

// NewEnv returns a fresh Env that is closed when the test ends.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	env := New()
	t.Cleanup(env.Close)
	return env
}

// New returns a fresh in-memory broker and a recording client on it. Close it
// when done (NewEnv does that for you in tests).
func New() *Env {
	b := memory.New(memory.Config{})
	rec := &Recorder{}
	// The config is valid by construction, so NewClient cannot fail here.
	c, err := jobs.NewClient(b, &jobs.ClientConfig{Middleware: []jobs.EnqueueMiddleware{rec.middleware}, DisableEvents: true})
	if err != nil {
		panic(err)
	}
	return &Env{Broker: b, Client: c, Recorder: rec}
}

// Close closes the client and the broker.
func (e *Env) Close() {
	_ = e.Client.Close(context.Background())
	_ = e.Broker.Close()
}

// RequireEnqueued fails the test unless a task of args' kind with args equal
// to args (compared as JSON) was enqueued; when queue is not empty the task
// must also be on that queue. It returns the matching task.
func RequireEnqueued[T jobs.JobArgs](t testing.TB, r *Recorder, args T, queue string) Enqueued {
	t.Helper()
	want, err := json.Marshal(args)
	if err != nil {
		t.Fatalf("jobstest: encode args: %v", err)
	}
	candidates := r.Kind(args.Kind())
	for _, e := range candidates {
		if jsonEqual(want, e.Args) && (queue == "" || e.Queue == queue) {
			return e
		}
	}
	var seen []string
	for _, e := range candidates {
		seen = append(seen, fmt.Sprintf("%s on %s", e.Args, e.Queue))
	}
	t.Fatalf("jobstest: no %q task with args %s enqueued%s; saw %d of that kind: %v", args.Kind(), want, onQueue(queue), len(candidates), seen)
	return Enqueued{}
}

// RequireNotEnqueued fails the test if any task of kind was enqueued.
func RequireNotEnqueued(t testing.TB, r *Recorder, kind string) {
	t.Helper()
	if got := r.Kind(kind); len(got) > 0 {
		t.Fatalf("jobstest: %d %q task(s) enqueued, want none", len(got), kind)
	}
}

func onQueue(q string) string {
	if q == "" {
		return ""
	}
	return " on queue " + q
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}
