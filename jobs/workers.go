package jobs

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrDuplicateKind reports a second worker registered for one kind.
var ErrDuplicateKind = errors.New("worker already registered for kind")

// Workers is the registry of handlers a Runner executes, one per kind.
type Workers struct {
	mu       sync.RWMutex
	handlers map[string]handler
}

// NewWorkers returns an empty registry.
func NewWorkers() *Workers {
	return &Workers{handlers: make(map[string]handler)}
}

// AddWorker registers worker for kind T. It panics if T's kind is already
// registered or empty: registration happens at start-up, where a panic is the
// clearest failure. Use AddWorkerSafely to get an error instead.
func AddWorker[T JobArgs](workers *Workers, worker Worker[T]) {
	if err := AddWorkerSafely(workers, worker); err != nil {
		panic(err)
	}
}

// AddWorkerSafely is AddWorker returning an error instead of panicking.
func AddWorkerSafely[T JobArgs](workers *Workers, worker Worker[T]) error {
	var zero T
	kind := zero.Kind()
	if kind == "" {
		return fmt.Errorf("jobs: kind of %T is empty", zero)
	}
	if worker == nil {
		return fmt.Errorf("jobs: nil worker for kind %q", kind)
	}
	workers.mu.Lock()
	defer workers.mu.Unlock()
	if _, dup := workers.handlers[kind]; dup {
		return fmt.Errorf("jobs: %w %q", ErrDuplicateKind, kind)
	}
	workers.handlers[kind] = typedHandler[T]{worker: worker}
	return nil
}

// Kinds lists the registered kinds, sorted.
func (w *Workers) Kinds() []string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	kinds := make([]string, 0, len(w.handlers))
	for k := range w.handlers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// DecodeArgs decodes data, a task's JSON args given from outside the program
// (a command line, another service), into the args type registered for kind,
// ready to pass to Client.Enqueue. It decodes strictly, so that a typo is
// caught before anything is enqueued: an unknown field or trailing data is an
// error. An unregistered kind is an error wrapping ErrUnknownKind.
func (w *Workers) DecodeArgs(kind string, data []byte) (JobArgs, error) {
	h, ok := w.lookup(kind)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	args, err := h.decodeArgs(data)
	if err != nil {
		return nil, fmt.Errorf("args of kind %q: %w", kind, err)
	}
	return args, nil
}

func (w *Workers) lookup(kind string) (handler, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	h, ok := w.handlers[kind]
	return h, ok
}
