// Package webui holds the pages Signalbox serves itself: the live view (/_/trace), the
// demo chat (/_/demo/) and the browser bundle of @microsoft/signalr they load
// (/_/static/signalr.min.js). Plain HTML and JavaScript embedded in the binary: no
// front-end build step, no network.
package webui

import (
	"embed"
	"net/http"
)

//go:embed static/signalr.min.js static/trace.html static/chat.html
var files embed.FS

// StaticPrefix is where Static serves the SignalR client bundle.
const StaticPrefix = "/_/static/"

// Static serves /_/static/signalr.min.js.
func Static() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != StaticPrefix+"signalr.min.js" {
			http.NotFound(w, r)
			return
		}
		serve(w, r, "static/signalr.min.js", "text/javascript; charset=utf-8")
	})
}

// TracePage serves the live view.
func TracePage() http.Handler { return page("static/trace.html") }

// ChatPage serves the demo chat.
func ChatPage() http.Handler { return page("static/chat.html") }

func page(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, name, "text/html; charset=utf-8")
	})
}

func serve(w http.ResponseWriter, r *http.Request, name, contentType string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := files.ReadFile(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	// The pages load only their own scripts and talk only to this origin.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
