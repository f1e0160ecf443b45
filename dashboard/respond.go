package dashboard

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/dashboard/internal/assets"
	"github.com/warrenjobs/warren/dashboard/internal/view"
)

// page builds the layout's model for the request: relative root, polling
// source and the state shown in the header.
func (d *Dashboard) page(r *http.Request, title, section string) view.Page {
	escaped := r.URL.EscapedPath()
	root := "./"
	if depth := strings.Count(escaped, "/") - 1; depth > 0 {
		root = strings.Repeat("../", depth)
	}
	self := root + strings.TrimPrefix(escaped, "/")
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	refresh := d.cfg.RefreshInterval
	if refresh < 0 {
		refresh = 0
	}
	return view.Page{
		Root: root, Self: self, Title: title, Section: section, Refresh: refresh,
		ReadOnly: d.cfg.ReadOnly, Replaying: d.Replaying(), Now: d.now(),
		Icon: assets.Path("favicon.svg"), CSS: assets.Path("style.css"), JS: assets.Path("app.js"), HTMX: assets.Path("htmx.min.js"),
	}
}

// render writes a screen: the whole page, or only its live part when htmx
// polls for it.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, full, fragment templ.Component) {
	c := full
	if fragment != nil && r.Header.Get("HX-Request") == "true" {
		c = fragment
	}
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		d.log.Error("dashboard: render failed", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers an error as JSON for the API, as a page for the screens.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeError(w, status, msg)
		return
	}
	p := d.page(r, http.StatusText(status), "")
	p.Refresh = 0
	d.render(w, r, status, view.ProblemPage(p, view.Problem{Status: status, Message: msg}), nil)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.Error{Error: msg})
}

// redirect answers a form POST with 303 See Other to a location relative to
// the request, which keeps working under any mount prefix.
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}
