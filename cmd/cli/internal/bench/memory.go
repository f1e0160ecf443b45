package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Memory phase bounds: each worker process drains for at most memDrainTime,
// or until it has run memDrainShare of the backlog.
const (
	memDrainTime  = 8 * time.Second
	memDrainShare = 0.4
	memWarmup     = time.Second
)

// memory: resident memory of a worker process under a deep backlog, warren's
// Runner beside a raw consumer with the same prefetch, one after the other on
// the same pre-filled queue.
func memory(ctx context.Context, e *env) (Scenario, error) {
	backlog := memFactor * e.cfg.N
	q, err := e.declaredWarrenQueue(ctx, "memory")
	if err != nil {
		return Scenario{}, err
	}
	if err := e.fill(ctx, q, []string{"warren." + q}, backlog); err != nil {
		return Scenario{}, err
	}
	limit := int64(float64(backlog) * memDrainShare)
	lim := strconv.FormatInt(limit, 10)
	raw, err := e.runChild(ctx, []string{"--mode", "raw", "--queue", q, "--prefetch", strconv.Itoa(e.cfg.Prefetch), "--limit", lim}, limit)
	if err != nil {
		return Scenario{}, fmt.Errorf("raw worker: %w", err)
	}
	e.logf("memory: raw start %.1f MB, after %.1f MB, peak %.1f MB, ran %d", raw.start, raw.end, raw.peak, raw.processed)
	war, err := e.runChild(ctx, []string{"--mode", "warren", "--queue", q, "--prefetch", strconv.Itoa(e.cfg.Prefetch),
		"--concurrency", strconv.Itoa(e.cfg.Concurrency), "--limit", lim}, limit)
	if err != nil {
		return Scenario{}, fmt.Errorf("warren worker: %w", err)
	}
	e.logf("memory: warren start %.1f MB, after %.1f MB, peak %.1f MB, ran %d", war.start, war.end, war.peak, war.processed)

	base := fmt.Sprintf("%s consumer process, prefetch %d", baselineRaw, e.cfg.Prefetch)
	after := line("worker RSS after draining", "MB", war.end, raw.end, base, "")
	flat := war.end <= 1.25*war.start+5
	after.Target, after.Met = "flat: <= 1.25 x start + 5 MB", &flat
	return Scenario{
		Lines: []Line{
			line("worker RSS at start", "MB", war.start, raw.start, base, ""),
			after,
			line("worker peak RSS", "MB", war.peak, raw.peak, base, ""),
		},
		Notes: []string{fmt.Sprintf("backlog %d tasks; raw ran %d tasks in %.1f s, warren %d in %.1f s (concurrency %d), the queue still %d deep",
			backlog, raw.processed, raw.took.Seconds(), war.processed, war.took.Seconds(), e.cfg.Concurrency, backlog-int(raw.processed+war.processed))},
	}, nil
}

// childRSS is what one worker process showed.
type childRSS struct {
	start, end, peak float64 // MB
	processed        int64
	took             time.Duration
}

// runChild starts a worker process, samples its VmRSS every 100 ms until it
// ran limit tasks or memDrainTime passed, then stops it.
func (e *env) runChild(ctx context.Context, args []string, limit int64) (childRSS, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute+memDrainTime)
	defer cancel()
	cmd := e.cfg.Child(ctx, args)
	cmd.Env = append(cmd.Environ(), "WARREN_AMQP_URL="+e.cfg.URL)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return childRSS{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return childRSS{}, err
	}
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return childRSS{}, err
	}
	var processed atomic.Int64
	exited := make(chan error, 1)
	var readers sync.WaitGroup
	readers.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var r childReport
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				processed.Store(r.Processed)
			}
		}
	})
	go func() { readers.Wait(); exited <- cmd.Wait() }()
	stop := func() error {
		_ = stdin.Close()
		select {
		case err := <-exited:
			return err
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			return <-exited
		}
	}
	fail := func(err error) (childRSS, error) {
		_ = cmd.Process.Kill()
		<-exited
		if s := stderr.String(); s != "" {
			err = fmt.Errorf("%w: %s", err, s)
		}
		return childRSS{}, err
	}

	var res childRSS
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var firstTask, warm time.Time
	for {
		select {
		case err := <-exited:
			return childRSS{}, fmt.Errorf("exited early (%v): %s", err, stderr.String())
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-tick.C:
		}
		mb, err := rssMB(cmd.Process.Pid)
		if err != nil {
			return fail(err)
		}
		res.peak = max(res.peak, mb)
		p := processed.Load()
		now := time.Now()
		switch {
		case firstTask.IsZero():
			if p > 0 {
				firstTask = now
			}
			continue
		case warm.IsZero():
			if now.Sub(firstTask) < memWarmup && p < limit {
				continue
			}
			warm, res.start = now, mb
		}
		if p >= limit || now.Sub(firstTask) >= memDrainTime {
			res.end, res.processed, res.took = mb, p, now.Sub(firstTask)
			break
		}
	}
	if err := stop(); err != nil {
		return childRSS{}, fmt.Errorf("%w: %s", err, stderr.String())
	}
	return res, nil
}

// tailBuffer keeps the last 2 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > 4096 {
		b := t.buf.Bytes()[t.buf.Len()-2048:]
		t.buf = *bytes.NewBuffer(append([]byte(nil), b...))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf.Bytes()))
}

var _ io.Writer = (*tailBuffer)(nil)
