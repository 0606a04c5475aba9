package bff

import (
	"net/http"
	"strings"
)

// requireCSRF guards API calls and /bff/user. The custom header cannot be
// set by a cross-site form or a simple cross-site fetch without a CORS
// preflight, which the BFF never grants; Sec-Fetch-Site, sent by every
// current browser, refuses cross-site requests outright. WebSocket upgrades
// cannot carry custom headers, so they are checked by Origin instead.
func (s *Server) requireCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			s.writeError(w, r, errCSRF("cross-site request refused"))
			return
		}
		if isWebSocketUpgrade(r) {
			if r.Header.Get("Origin") != s.origin {
				s.writeError(w, r, errCSRF("WebSocket origin not allowed"))
				return
			}
		} else if r.Header.Get(s.cfg.CSRFHeader) != "1" {
			s.writeError(w, r, errCSRF("missing "+s.cfg.CSRFHeader+" header"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireStream guards EventSource streams, which cannot carry custom
// headers either: not cross-site, and an Origin, when the browser sends
// one, equal to the public origin.
func (s *Server) requireStream(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			s.writeError(w, r, errCSRF("cross-site request refused"))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != s.origin {
			s.writeError(w, r, errCSRF("origin not allowed"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
