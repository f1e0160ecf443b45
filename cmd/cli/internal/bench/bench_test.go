package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
}

func TestLine(t *testing.T) {
	l := line("x", "msg/s", 800, 1000, baselineRaw, ">= 0.80")
	if l.Ratio != 0.8 || l.Met == nil || !*l.Met {
		t.Errorf("800/1000 against >= 0.80: %+v", l)
	}
	l = line("x", "ms", 1.4, 1, baselineRaw, "<= 1.30")
	if l.Ratio != 1.4 || l.Met == nil || *l.Met {
		t.Errorf("1.4/1 against <= 1.30: %+v", l)
	}
	if l = line("x", "ms", 1, 2, baselineRaw, ""); l.Met != nil || l.Ratio != 0.5 {
		t.Errorf("no target: %+v", l)
	}
	if l = line("x", "ms", 1, 0, baselineRaw, ">= 0.80"); l.Ratio != 0 || *l.Met {
		t.Errorf("raw 0: %+v", l)
	}
}

func TestCheckLocal(t *testing.T) {
	for _, u := range []string{"amqp://guest:guest@127.0.0.1:5672/", "amqp://localhost", "amqps://u:p@[::1]:5671/v", "amqp://127.0.0.2/", "amqp://"} {
		if err := CheckLocal(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"amqp://guest:secret@10.0.0.1/", "amqp://rabbit.example.com/", "amqp://192.168.1.5:5672/", "amqp://0.0.0.0/", "::"} {
		err := CheckLocal(u)
		if err == nil {
			t.Errorf("%s accepted", u)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error shows the password: %v", u, err)
		}
	}
}

func TestArgsAre200Bytes(t *testing.T) {
	b, err := json.Marshal(newArgs(time.Now()))
	if err != nil || len(b) != argsBytes {
		t.Fatalf("args are %d bytes (%v), want %d: %s", len(b), err, argsBytes, b)
	}
	if len(rawBody(time.Now().Add(365*24*time.Hour))) != argsBytes {
		t.Fatal("raw body is not argsBytes long")
	}
}

func TestReportText(t *testing.T) {
	rep := &Report{Broker: "RabbitMQ 3.10.8", Machine: Machine{CPUs: 2}, Settings: Settings{N: 10},
		Scenarios: []Scenario{{Name: "drain", Lines: []Line{line("drain", "tasks/s", 900, 1000, baselineRaw, ">= 0.80")}, Notes: []string{"a note"}}}}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RabbitMQ 3.10.8", "drain", "900", "1000", "0.900", ">= 0.80 ok", "drain: a note"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{URL: "amqp://127.0.0.1/", Scenarios: []string{"memory", "nope"}}.withDefaults()
	err := cfg.validate()
	if err == nil || !strings.Contains(err.Error(), `unknown scenario "nope"`) || !strings.Contains(err.Error(), "Config.Child") {
		t.Fatalf("validate: %v", err)
	}
}

func TestMedianOfRuns(t *testing.T) {
	run := func(w, r float64, flat bool) Scenario {
		mem := line("rss", "MB", w, r, baselineRaw, "")
		mem.Target, mem.Met = "flat", &flat
		return Scenario{Name: "s", Seconds: 1, Lines: []Line{line("x", "msg/s", w, r, baselineRaw, ">= 0.80"), mem}, Notes: []string{"n"}}
	}
	m := median([]Scenario{run(70, 100, true), run(90, 100, false), run(160, 200, true)})
	l := m.Lines[0]
	if l.Warren != 90 || l.Raw != 100 || l.Ratio != 0.8 || !slices.Equal(l.RunRatios, []float64{0.7, 0.9, 0.8}) || l.Met == nil || !*l.Met {
		t.Errorf("median line: %+v", l)
	}
	if m.Lines[1].Met == nil || !*m.Lines[1].Met {
		t.Errorf("flat in 2 of 3 runs: %+v", m.Lines[1])
	}
	if m.Seconds != 3 || len(m.Notes) != 3 {
		t.Errorf("seconds %v, notes %v", m.Seconds, m.Notes)
	}
	if got := mid([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("mid of 4 = %v", got)
	}
}
