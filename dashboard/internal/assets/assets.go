// Package assets embeds the dashboard's static files (htmx 2.0.11 from the
// npm package htmx.org, the dashboard's script and stylesheet) and serves
// them under content-hashed names, so browsers may cache them forever.
package assets

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// file is one embedded asset.
type file struct {
	hashed      string // name with the content hash before the extension
	contentType string
	body        []byte
	etag        string
}

var (
	byName   = map[string]*file{}
	byHashed = map[string]*file{}
)

func init() {
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		body, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:])[:16]
		ext := path.Ext(e.Name())
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		f := &file{hashed: strings.TrimSuffix(e.Name(), ext) + "." + h + ext, contentType: ct, body: body, etag: `"` + h + `"`}
		byName[e.Name()] = f
		byHashed[f.hashed] = f
	}
}

// Path returns the hashed path of an embedded file, relative to the
// dashboard's root: "assets/htmx.min.0123456789abcdef.js". It panics for a
// name that is not embedded (a programming error caught by every test).
func Path(name string) string {
	f, ok := byName[name]
	if !ok {
		panic("assets: no embedded file " + name)
	}
	return "assets/" + f.hashed
}

// CacheControl is sent with every asset: its name changes with its content.
const CacheControl = "public, max-age=31536000, immutable"

// Handler serves GET assets/{name} for hashed names only.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := byHashed[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Cache-Control", CacheControl)
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(f.body)
	})
}
