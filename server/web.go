package server

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
)

// webFiles are the dashboard (plain HTML, CSS and JavaScript: no build
// step, nothing from another origin) and the OpenAPI description, a copy
// of docs/openapi.yaml (a test keeps the two equal).
//
//go:embed web
var webFiles embed.FS

// serveFile serves one embedded file with its content type and an ETag.
func serveFile(name, contentType string) http.HandlerFunc {
	b, err := webFiles.ReadFile(name)
	if err != nil {
		panic("server: missing embedded file " + name) // a build without web/
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(b)
	}
}
