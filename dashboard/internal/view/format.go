package view

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warrenjobs/warren/dashboard/api"
)

// ago says how long before now t was: "4s ago", "3m ago".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + short(-d)
	}
	return short(d) + " ago"
}

// short renders a duration coarsely: "850ms", "12s", "3m 20s", "2h 5m", "3d 4h".
func short(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		return pair(d/time.Minute, "m", (d%time.Minute)/time.Second, "s")
	case d < 48*time.Hour:
		return pair(d/time.Hour, "h", (d%time.Hour)/time.Minute, "m")
	}
	return pair(d/(24*time.Hour), "d", (d%(24*time.Hour))/time.Hour, "h")
}

// pair renders "3m 20s", or "3m" when the smaller unit is zero.
func pair(big time.Duration, bigUnit string, small time.Duration, smallUnit string) string {
	if small == 0 {
		return fmt.Sprintf("%d%s", big, bigUnit)
	}
	return fmt.Sprintf("%d%s %d%s", big, bigUnit, small, smallUnit)
}

// seconds renders a run time given in seconds.
func seconds(s float64) string {
	if s <= 0 {
		return "—"
	}
	return short(time.Duration(s * float64(time.Second)))
}

// stamp renders a time in UTC to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// clock renders the time of day in UTC.
func clock(t time.Time) string { return t.UTC().Format("15:04:05Z") }

// rate renders a per-minute rate.
func rate(f float64) string {
	switch {
	case f == 0:
		return "0"
	case f < 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(math.Round(f), 'f', 0, 64)
}

func itoa(n int) string  { return strconv.Itoa(n) }
func i64(n int64) string { return strconv.FormatInt(n, 10) }
func refresh(p Page) string {
	return "every " + strconv.FormatFloat(p.Refresh.Seconds(), 'f', -1, 64) + "s"
}

// oldest renders a queue's oldest-ready age.
func oldest(secs *float64, atLeast bool) string {
	if secs == nil {
		return "—"
	}
	s := short(time.Duration(*secs * float64(time.Second)))
	if atLeast {
		return "≥ " + s
	}
	return s
}

// pretty indents JSON for display, with Go's HTML-safe escapes of <, > and
// & turned back into the characters (the page escapes them itself); other
// text is returned as it is.
func pretty(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return unescapeHTMLSafe(buf.String())
}

// unescapeHTMLSafe replaces \u003c, \u003e and \u0026 escapes (not escaped
// backslashes followed by those letters) with the characters.
func unescapeHTMLSafe(s string) string {
	if !strings.Contains(s, `\u00`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+5 < len(s) && s[i+1] == 'u' {
			switch s[i+2 : i+6] {
			case "003c", "003C":
				b.WriteByte('<')
				i += 5
				continue
			case "003e", "003E":
				b.WriteByte('>')
				i += 5
				continue
			case "0026":
				b.WriteByte('&')
				i += 5
				continue
			}
		}
		// Any other escape: copy it whole, so an escaped backslash is not
		// read as the start of another escape.
		b.WriteByte(s[i])
		if i+1 < len(s) {
			i++
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// firstLine is the first line of s, for one-line cells.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// queues renders a worker's queues and weights: "emails×2, reports×1".
func queues(m map[string]int) string {
	names := make([]string, 0, len(m))
	for q := range m {
		names = append(names, q)
	}
	sortStrings(names)
	parts := make([]string, len(names))
	for i, q := range names {
		parts[i] = q + "×" + strconv.Itoa(m[q])
	}
	return strings.Join(parts, ", ")
}

// TaskURL is the task's detail page below the root.
func TaskURL(id string) string { return "tasks/" + url.PathEscape(id) }

// QueueURL is the queue's page below the root.
func QueueURL(name string) string { return "queues/" + url.PathEscape(name) }

// DeadURL is the queue's dead-letter page below the root.
func DeadURL(name string) string { return QueueURL(name) + "/dead" }

// confirmURL builds a confirmation link for action on queue.
func confirmURL(queue, action string, ids []string, all bool) string {
	v := url.Values{"action": {action}}
	if all {
		v.Set("all", "true")
	}
	for _, id := range ids {
		v.Add("ids", id)
	}
	base := QueueURL(queue) + "/confirm"
	if action != "purge" {
		base = DeadURL(queue) + "/confirm"
	}
	return base + "?" + v.Encode()
}

// tasksURL is the task list filtered.
func tasksURL(state, queue string) string {
	v := url.Values{}
	if state != "" {
		v.Set("state", state)
	}
	if queue != "" {
		v.Set("queue", queue)
	}
	if len(v) == 0 {
		return "tasks"
	}
	return "tasks?" + v.Encode()
}

func totalReady(qs []api.Queue) int {
	n := 0
	for _, q := range qs {
		n += q.Ready
	}
	return n
}

func totalInFlight(qs []api.Queue) int {
	n := 0
	for _, q := range qs {
		n += q.InFlight
	}
	return n
}

func totalDead(qs []api.Queue) int {
	n := 0
	for _, q := range qs {
		n += q.Dead
	}
	return n
}

func confirmQuestion(m Confirm) string {
	switch {
	case m.Action == "purge":
		return "Purge the " + plural(m.Count, "ready task") + " of queue " + m.Queue + "?"
	case m.All:
		return verb(m.Action) + " all " + plural(m.Count, "dead letter") + " of queue " + m.Queue + "?"
	}
	return verb(m.Action) + " " + plural(len(m.IDs), "dead letter") + " of queue " + m.Queue + "?"
}

func confirmButton(m Confirm) string {
	switch {
	case m.Action == "purge":
		return "Purge " + m.Queue
	case m.All:
		return verb(m.Action) + " all"
	}
	return verb(m.Action) + " " + plural(len(m.IDs), "dead letter")
}

func verb(action string) string {
	switch action {
	case "retry":
		return "Retry"
	case "delete":
		return "Delete"
	}
	return "Purge"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
