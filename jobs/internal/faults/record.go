package faults

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Operations of a record line. A history is a directory of record files, one
// per process (a producer, or one life of a worker); each line is one
// operation:
//
//	enq-ok  <task-id> 0 <pid>        Enqueue returned nil
//	enq-err <task-id> 0 <pid>        Enqueue returned an error (may or may not run)
//	done    <task-id> <attempt> <pid> the handler ran to completion and returns nil
//	fail    <task-id> <attempt> <pid> the handler returns an error
//	panic   <task-id> <attempt> <pid> the handler is about to panic
//
// Each line is written with one write(2) on a file opened O_APPEND: a
// process killed by SIGKILL leaves whole lines behind (the page cache
// survives a process kill; only a machine crash would need fsync), except at
// worst a torn last line, which readers skip.
const (
	OpEnqueued     = "enq-ok"
	OpEnqueueError = "enq-err"
	OpDone         = "done"
	OpFail         = "fail"
	OpPanic        = "panic"
)

// RecordExt is the file extension ReadHistory reads.
const RecordExt = ".rec"

// Recorder appends operations to a record file. It is safe for concurrent use.
type Recorder struct {
	f   *os.File
	pid int
}

// OpenRecorder opens (creating) the record file at path for appending.
func OpenRecorder(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Recorder{f: f, pid: os.Getpid()}, nil
}

// Record appends one operation on task id, in a single write.
func (r *Recorder) Record(op, id string, attempt int) error {
	if strings.ContainsAny(id, " \n") || id == "" {
		return fmt.Errorf("faults: cannot record task ID %q", id)
	}
	line := op + " " + id + " " + strconv.Itoa(attempt) + " " + strconv.Itoa(r.pid) + "\n"
	_, err := r.f.WriteString(line)
	return err
}

// Close closes the file.
func (r *Recorder) Close() error { return r.f.Close() }

// Entry is one parsed record line.
type Entry struct {
	Op      string
	ID      string
	Attempt int
	PID     int
}

// ReadHistory reads every record file (*.rec) in dir.
func ReadHistory(dir string) ([]Entry, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*"+RecordExt))
	if err != nil {
		return nil, err
	}
	var all []Entry
	for _, p := range paths {
		es, err := readRecords(p)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	return all, nil
}

// readRecords parses one record file. A torn last line (no newline: its
// writer was killed mid-write) is skipped; any other unparsable line is an
// error.
func readRecords(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	whole := string(data)
	if i := strings.LastIndexByte(whole, '\n'); i >= 0 {
		whole = whole[:i]
	} else {
		whole = ""
	}
	var out []Entry
	for n, line := range strings.Split(whole, "\n") {
		if line == "" && whole == "" {
			break
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("faults: %s line %d: %w", path, n+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseEntry(line string) (Entry, error) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return Entry{}, fmt.Errorf("want 4 fields, got %q", line)
	}
	switch f[0] {
	case OpEnqueued, OpEnqueueError, OpDone, OpFail, OpPanic:
	default:
		return Entry{}, fmt.Errorf("unknown operation %q", f[0])
	}
	attempt, err1 := strconv.Atoi(f[2])
	pid, err2 := strconv.Atoi(f[3])
	if err := errors.Join(err1, err2); err != nil {
		return Entry{}, err
	}
	return Entry{Op: f[0], ID: f[1], Attempt: attempt, PID: pid}, nil
}
