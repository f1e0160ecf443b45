package view

import (
	"slices"
	"strconv"
	"strings"

	"github.com/warrenjobs/warren/dashboard/api"
)

// Chart is a line chart of per-minute counts over the last hour.
type Chart struct {
	Title  string
	TestID string
	Series []Series
	Max    int // the top of the y axis
}

// Series is one line.
type Series struct {
	Name   string
	Class  string // s-enqueued, s-succeeded or s-failed
	Values []int
	Total  int
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH                 = 1200, 220
	padL, padR, padT, padB         = 48, 12, 10, 24
	sparkW, sparkH                 = 120, 24
	plotW                  float64 = chartW - padL - padR
	plotH                  float64 = chartH - padT - padB
)

// ThroughputChart charts enqueued, succeeded and failed per minute.
func ThroughputChart(title, testID string, h []api.Minute) Chart {
	enq, ok, fail := make([]int, len(h)), make([]int, len(h)), make([]int, len(h))
	for i, m := range h {
		enq[i], ok[i], fail[i] = m.Enqueued, m.Succeeded, m.Failed
	}
	c := Chart{Title: title, TestID: testID, Series: []Series{
		{Name: "enqueued", Class: "s-enqueued", Values: enq},
		{Name: "succeeded", Class: "s-succeeded", Values: ok},
		{Name: "failed", Class: "s-failed", Values: fail},
	}}
	top := 0
	for i := range c.Series {
		s := &c.Series[i]
		for _, v := range s.Values {
			s.Total += v
		}
		top = max(top, slices.Max(append(s.Values, 0)))
	}
	c.Max = niceCeil(top)
	return c
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten (at least 4, so the
// half-way grid line is a whole number).
func niceCeil(n int) int {
	if n <= 4 {
		return 4
	}
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// points renders a series as SVG polyline points within the plot area.
func (c Chart) points(s Series) string {
	return polyline(s.Values, c.Max, padL, padT, plotW, plotH)
}

func polyline(values []int, top int, x0, y0 int, w, h float64) string {
	if len(values) == 0 {
		return ""
	}
	if top <= 0 {
		top = 1
	}
	var b strings.Builder
	step := w
	if len(values) > 1 {
		step = w / float64(len(values)-1)
	}
	for i, v := range values {
		if i > 0 {
			b.WriteByte(' ')
		}
		x := float64(x0) + float64(i)*step
		y := float64(y0) + h - h*float64(min(v, top))/float64(top)
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	return b.String()
}

// gridY is the y coordinate of a fraction of the plot's height.
func gridY(frac float64) string {
	return strconv.FormatFloat(float64(padT)+plotH-plotH*frac, 'f', 1, 64)
}

func xAt(frac float64) string { return strconv.FormatFloat(float64(padL)+plotW*frac, 'f', 1, 64) }

// Fixed positions of the chart's frame, as SVG attribute values.
var (
	viewBox = "0 0 " + strconv.Itoa(chartW) + " " + strconv.Itoa(chartH)
	gridX1  = strconv.Itoa(padL)
	gridX2  = strconv.Itoa(chartW - padR)
	yLabelX = strconv.Itoa(padL - 6)
	xLabelY = strconv.Itoa(chartH - 6)
)

// sparkline renders one series of a queue's hour small.
func sparkline(values []int, top int) string {
	return polyline(values, max(top, 1), 1, 1, sparkW-2, sparkH-2)
}

func seriesOf(h []api.Minute, pick func(api.Minute) int) []int {
	out := make([]int, len(h))
	for i, m := range h {
		out[i] = pick(m)
	}
	return out
}

func sparkMax(h []api.Minute) int {
	top := 0
	for _, m := range h {
		top = max(top, m.Succeeded, m.Failed)
	}
	return top
}

func succeeded(m api.Minute) int { return m.Succeeded }
func failed(m api.Minute) int    { return m.Failed }

func sortStrings(s []string) { slices.Sort(s) }
