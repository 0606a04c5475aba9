package bff

import (
	"embed"
	"net/http"
	"strings"
)

// adminUI is the admin console: one HTML page, its script and its style,
// all embedded — nothing is loaded from anywhere else.
//
//go:embed adminui
var adminUI embed.FS

// consoleCSP allows the console's own script, style and API calls and
// nothing else: no inline script or style, no other origin, no framing, no
// form posts. The page handles an admin token; nothing injected into it
// could run.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// handleConsole serves the console's files. They are public: the page
// holds no data, and every call it makes needs the admin token, which the
// operator pastes into it.
func handleConsole(name, contentType string) http.Handler {
	body, err := adminUI.ReadFile("adminui/" + name)
	if err != nil {
		panic("admin console asset missing from the build: " + name) // a build defect, caught by any test
	}
	cacheControl := "no-cache" // revalidated, so a new release's script is picked up
	if strings.HasPrefix(contentType, "text/html") {
		cacheControl = "no-store"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", cacheControl)
		_, _ = w.Write(body)
	})
}
