package main_test

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// benchReport is the part of `warren bench --json` a reader relies on.
type benchReport struct {
	Broker  string `json:"broker"`
	Machine struct {
		CPUs int `json:"cpus"`
	} `json:"machine"`
	Settings struct {
		N int `json:"n"`
	} `json:"settings"`
	Scenarios []struct {
		Name  string `json:"name"`
		Lines []struct {
			Metric   string   `json:"metric"`
			Unit     string   `json:"unit"`
			Warren   *float64 `json:"warren"`
			Raw      *float64 `json:"raw"`
			Baseline string   `json:"baseline"`
			Ratio    *float64 `json:"ratio"`
			Target   string   `json:"target"`
			Met      *bool    `json:"met"`
		} `json:"lines"`
	} `json:"scenarios"`
	Queues []string `json:"queues"`
}

// TestBench runs every benchmark scenario at a tiny size: the command runs
// end to end (the memory scenario's worker processes included), prints every
// scenario with both figures and their ratio, and deletes its queues. It
// asserts no performance target: CI machines are shared.
func TestBench(t *testing.T) {
	t.Parallel()
	s := setup(t)
	start := time.Now()
	var rep benchReport
	s.okJSON(&rep, "bench", "--scenario", "all", "--n", "50", "--json")
	t.Logf("warren bench --n 50 took %v", time.Since(start).Round(time.Millisecond))

	require.True(t, strings.HasPrefix(rep.Broker, "RabbitMQ "), "broker %q", rep.Broker)
	require.GreaterOrEqual(t, rep.Machine.CPUs, 1)
	require.Equal(t, 50, rep.Settings.N)
	var names []string
	for _, sc := range rep.Scenarios {
		names = append(names, sc.Name)
		require.NotEmpty(t, sc.Lines, "scenario %s has no figures", sc.Name)
		for _, l := range sc.Lines {
			what := sc.Name + ": " + l.Metric
			require.NotEmpty(t, l.Metric, sc.Name)
			require.NotEmpty(t, l.Unit, what)
			require.NotEmpty(t, l.Baseline, what)
			require.NotNil(t, l.Warren, what)
			require.NotNil(t, l.Raw, what)
			require.NotNil(t, l.Ratio, what)
			require.Greater(t, *l.Warren, 0.0, what)
			require.Greater(t, *l.Raw, 0.0, what)
			// The ratio is warren over raw, from figures rounded for print.
			want := *l.Warren / *l.Raw
			require.False(t, math.IsNaN(*l.Ratio) || math.IsInf(*l.Ratio, 0), what)
			require.InEpsilon(t, want, *l.Ratio, 0.02, "%s: ratio %v of %v / %v", what, *l.Ratio, *l.Warren, *l.Raw)
			if l.Target != "" {
				require.NotNil(t, l.Met, "%s: target %q without a verdict", what, l.Target)
			}
		}
	}
	require.Equal(t, []string{"enqueue-16", "latency-1", "drain", "events-cost", "e2e-latency", "memory"}, names)

	// Every queue the run declared is gone.
	require.NotEmpty(t, rep.Queues)
	require.True(t, slices.ContainsFunc(rep.Queues, func(q string) bool { return strings.HasPrefix(q, "warren.bench-") }))
	conn, err := amqp091.Dial(s.url)
	require.NoError(t, err)
	defer conn.Close()
	for _, q := range rep.Queues {
		ch, err := conn.Channel()
		require.NoError(t, err)
		_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
		var aerr *amqp091.Error
		require.ErrorAs(t, err, &aerr, "queue %s still exists", q)
		require.Equal(t, amqp091.NotFound, aerr.Code, "queue %s: %v", q, err)
	}
}

// TestBenchRefusesRemoteBrokers: a benchmark is load, and load stays on
// this machine.
func TestBenchRefusesRemoteBrokers(t *testing.T) {
	t.Parallel()
	r := runWith(t, baseEnv("WARREN_AMQP_URL=amqp://guest:secret@192.0.2.1:5672/"), "", "bench", "--n", "10", "--json")
	require.Equal(t, 1, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Contains(t, r.stderr, "not a loopback address")
	require.NotContains(t, r.stderr, "secret")
	require.Empty(t, r.stdout)
}

// TestBenchProfile: --profile creates its directory and writes a CPU profile
// of every measured phase.
func TestBenchProfile(t *testing.T) {
	t.Parallel()
	s := setup(t)
	dir := filepath.Join(t.TempDir(), "not", "there", "yet")
	var rep benchReport
	s.okJSON(&rep, "bench", "--scenario", "latency-1", "--n", "20", "--json", "--profile", dir)
	info, err := os.Stat(filepath.Join(dir, "latency-1.pprof"))
	require.NoError(t, err, "the latency-1 phase's profile")
	require.Greater(t, info.Size(), int64(0))
}
