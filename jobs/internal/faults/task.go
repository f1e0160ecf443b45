package faults

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warrenjobs/warren/jobs"
)

// Task is the suite's job kind. Its args say how it behaves, so that one
// worker runs healthy, poison and panicking tasks side by side.
type Task struct {
	Seq       int    `json:"seq"`
	SleepMS   int    `json:"sleep_ms,omitempty"`   // work time; honours the context
	Fail      bool   `json:"fail,omitempty"`       // every attempt fails (poison)
	Panic     bool   `json:"panic,omitempty"`      // every attempt panics
	FailFirst bool   `json:"fail_first,omitempty"` // attempt 1 dead-letters itself (SkipRetry); later ones succeed
	FailOnce  bool   `json:"fail_once,omitempty"`  // attempt 1 fails (so it is retried); later ones succeed
	Pad       string `json:"pad,omitempty"`        // body size
}

// TaskKind is Task's kind.
const TaskKind = "faults.task"

// Kind implements jobs.JobArgs.
func (Task) Kind() string { return TaskKind }

// Mode overrides what every task of a worker does.
type Mode string

const (
	ModeNormal Mode = ""       // as the task's args say
	ModePoison Mode = "poison" // every attempt fails
	ModePanic  Mode = "panic"  // every attempt panics
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeNormal, ModePoison, ModePanic:
		return m, nil
	case "normal":
		return ModeNormal, nil
	}
	return "", fmt.Errorf("unknown mode %q (want normal, poison or panic)", s)
}

// ErrPoison is the error of a poison attempt.
var ErrPoison = errors.New("poison task: this attempt fails")

// TaskWorker executes Tasks and records every attempt before it returns.
type TaskWorker struct {
	jobs.WorkerDefaults[Task]
	Rec   *Recorder
	Mode  Mode
	Sleep time.Duration // added to every task's SleepMS
}

// Work implements jobs.Worker.
func (w *TaskWorker) Work(ctx context.Context, j *jobs.Job[Task]) error {
	if d := w.Sleep + time.Duration(j.Args.SleepMS)*time.Millisecond; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	switch {
	case w.Mode == ModePanic || j.Args.Panic:
		if err := w.Rec.Record(OpPanic, j.ID, j.Attempt); err != nil {
			return err
		}
		panic(fmt.Sprintf("faults: task %s panics on attempt %d", j.ID, j.Attempt))
	case w.Mode == ModePoison || j.Args.Fail:
		if err := w.Rec.Record(OpFail, j.ID, j.Attempt); err != nil {
			return err
		}
		return fmt.Errorf("attempt %d: %w", j.Attempt, ErrPoison)
	case j.Args.FailOnce && j.Attempt == 1:
		if err := w.Rec.Record(OpFail, j.ID, j.Attempt); err != nil {
			return err
		}
		return fmt.Errorf("attempt %d: %w", j.Attempt, ErrPoison)
	case j.Args.FailFirst && j.Attempt == 1:
		if err := w.Rec.Record(OpFail, j.ID, j.Attempt); err != nil {
			return err
		}
		return jobs.SkipRetry(fmt.Errorf("attempt %d: %w", j.Attempt, ErrPoison))
	}
	// Recorded last: the line means the handler completed. A crash after it
	// and before the ack makes a duplicate, never a loss.
	return w.Rec.Record(OpDone, j.ID, j.Attempt)
}
