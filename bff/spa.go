package bff

import (
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// handleSPA serves the embedded single-page app. Files of the build are
// served as they are (hashed assets under /assets/ with a long cache);
// any other GET page navigation gets index.html (no-cache), so client-side
// routes work on reload. Anything else — an API-style call to an unknown
// path, another method — is a JSON 404, never the app's HTML, so a typo in
// an API path fails loudly instead of parsing HTML as JSON.
func (s *Server) handleSPA() http.Handler {
	if s.static == nil {
		return s.handle(notFound)
	}
	files := http.FileServerFS(s.static)
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return errNotFound()
		}
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" || name == "index.html" {
			return serveIndex(w, s.static) // a file of the build, whatever the Accept header
		}
		if st, err := fs.Stat(s.static, name); err == nil && !st.IsDir() {
			if strings.HasPrefix(name, "assets/") {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				w.Header().Set("Cache-Control", "no-cache")
			}
			files.ServeHTTP(w, r)
			return nil
		}
		if !isPageNavigation(r) {
			return errNotFound()
		}
		return serveIndex(w, s.static)
	})
}

// serveIndex sends the app's entry page. It is never cached without
// revalidation, so a new release is picked up on the next load.
func serveIndex(w http.ResponseWriter, static fs.FS) error {
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		return errNoApp(err)
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(index)
	return nil
}

// isPageNavigation: a GET (or HEAD) that loads a page; a form POST that
// navigates is not one.
func isPageNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && isNavigation(r)
}
