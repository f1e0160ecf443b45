package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one bench run. Its JSON form is what
// `warren bench --json` prints.
type Report struct {
	StartedAt time.Time  `json:"started_at"`
	Seconds   float64    `json:"seconds"` // wall time of the whole run
	Broker    string     `json:"broker"`  // e.g. "RabbitMQ 3.10.8"
	Machine   Machine    `json:"machine"`
	Settings  Settings   `json:"settings"`
	Scenarios []Scenario `json:"scenarios"`
	// Queues are the AMQP queues the run declared, every one deleted again.
	Queues []string `json:"queues"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int     `json:"cpus"`
	OS        string  `json:"os"` // GOOS/GOARCH
	Go        string  `json:"go"`
	LoadStart float64 `json:"load_avg_start"` // 1-minute load average when the run started
	LoadEnd   float64 `json:"load_avg_end"`
	LoadMean  float64 `json:"load_avg_mean"` // of samples every 5 s during the run
	LoadMax   float64 `json:"load_avg_max"`
}

// Settings are the knobs the run used.
type Settings struct {
	N           int `json:"n"`
	Runs        int `json:"runs"`
	Prefetch    int `json:"prefetch"`
	Concurrency int `json:"concurrency"`
	ArgsBytes   int `json:"args_bytes"`
}

// Scenario is one scenario's figures: one or more lines, each warren beside
// its baseline.
type Scenario struct {
	Name    string   `json:"name"`
	Seconds float64  `json:"seconds"`
	Lines   []Line   `json:"lines"`
	Notes   []string `json:"notes,omitempty"`
}

// Line is one figure of warren beside the same figure of its baseline (raw
// amqp091-go, except for events-cost, whose baseline is warren with events
// off). Ratio is Warren/Raw.
type Line struct {
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Warren   float64 `json:"warren"`
	Raw      float64 `json:"raw"`
	Baseline string  `json:"baseline"` // what the raw column measured
	Ratio    float64 `json:"ratio"`
	Target   string  `json:"target,omitempty"` // e.g. ">= 0.80"
	Met      *bool   `json:"met,omitempty"`    // nil when the line has no target
	// RunRatios are the ratios of the single runs when there were several;
	// Warren and Raw are then the medians of the runs' figures, and Ratio
	// the median of RunRatios.
	RunRatios []float64 `json:"run_ratios,omitempty"`
}

// Baselines.
const (
	baselineRaw       = "raw amqp091-go"
	baselineEventsOff = "warren, events off"
)

// line builds a Line, computing its ratio and checking its target: ">= x" or
// "<= x" on the ratio, or "" for none.
func line(metric, unit string, warren, raw float64, baseline, target string) Line {
	l := Line{Metric: metric, Unit: unit, Warren: round(warren), Raw: round(raw), Baseline: baseline, Target: target}
	if raw != 0 {
		l.Ratio = round3(warren / raw)
	}
	return withTarget(l)
}

// withTarget sets l.Met from l.Ratio and l.Target.
func withTarget(l Line) Line {
	l.Met = nil
	var limit float64
	switch {
	case strings.HasPrefix(l.Target, ">= "):
		if _, err := fmt.Sscan(l.Target[3:], &limit); err == nil {
			met := l.Ratio >= limit
			l.Met = &met
		}
	case strings.HasPrefix(l.Target, "<= "):
		if _, err := fmt.Sscan(l.Target[3:], &limit); err == nil {
			met := l.Ratio <= limit && l.Ratio > 0
			l.Met = &met
		}
	}
	return l
}

// median merges the results of one scenario's runs: per line, the median of
// each figure and the median of the runs' ratios, its target checked on that.
func median(runs []Scenario) Scenario {
	out := runs[0]
	if len(runs) == 1 {
		return out
	}
	out.Lines = make([]Line, len(runs[0].Lines))
	out.Notes = nil
	for i, l := range runs[0].Lines {
		var ws, rs, ratios []float64
		for _, r := range runs {
			ws, rs, ratios = append(ws, r.Lines[i].Warren), append(rs, r.Lines[i].Raw), append(ratios, r.Lines[i].Ratio)
		}
		m := line(l.Metric, l.Unit, mid(ws), mid(rs), l.Baseline, l.Target)
		m.Ratio, m.RunRatios = round3(mid(ratios)), ratios
		if l.Met != nil && m.Met == nil { // a target checked otherwise (memory): met when met in most runs
			met := 0
			for _, r := range runs {
				if *r.Lines[i].Met {
					met++
				}
			}
			ok := 2*met > len(runs)
			m.Met = &ok
		} else if m.Met != nil {
			m = withTarget(m)
		}
		out.Lines[i] = m
	}
	out.Seconds = 0
	for _, r := range runs {
		out.Seconds += r.Seconds
		out.Notes = append(out.Notes, r.Notes...)
	}
	return out
}

// mid is the median of vs (the mean of the middle two for an even count).
func mid(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// round keeps figures readable: 3 significant decimals below 10, 1 below
// 1,000, none above.
func round(v float64) float64 {
	switch a := math.Abs(v); {
	case a >= 1000:
		return math.Round(v)
	case a >= 10:
		return math.Round(v*10) / 10
	default:
		return round3(v)
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// WriteJSON prints r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText prints r as a table for humans.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s, %d CPUs, %s, %s; n=%d runs=%d prefetch=%d concurrency=%d; load average %.2f -> %.2f (mean %.2f, max %.2f)\n\n",
		r.Broker, r.Machine.CPUs, r.Machine.OS, r.Machine.Go, r.Settings.N, r.Settings.Runs, r.Settings.Prefetch,
		r.Settings.Concurrency, r.Machine.LoadStart, r.Machine.LoadEnd, r.Machine.LoadMean, r.Machine.LoadMax)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmetric\twarren\tbaseline\tratio\ttarget\t")
	for _, s := range r.Scenarios {
		for _, l := range s.Lines {
			target := l.Target
			if l.Met != nil {
				if *l.Met {
					target += " ok"
				} else {
					target += " MISSED"
				}
			}
			base := fmt.Sprintf("%s (%s)", format(l.Raw), l.Baseline)
			fmt.Fprintf(tw, "%s\t%s [%s]\t%s\t%s\t%.3f\t%s\t\n", s.Name, l.Metric, l.Unit, format(l.Warren), base, l.Ratio, target)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Scenarios {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "%s: %s\n", s.Name, n)
		}
	}
	_, err := fmt.Fprintf(w, "\ntook %.1f s\n", r.Seconds)
	return err
}

func format(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}
