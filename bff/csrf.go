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
			s.refuseCSRF(w, r, csrfCrossSite, "cross-site request refused")
			return
		}
		if isWebSocketUpgrade(r) {
			if r.Header.Get("Origin") != s.origin {
				s.refuseCSRF(w, r, csrfWebSocketOrigin, "WebSocket origin not allowed")
				return
			}
		} else if r.Header.Get(s.cfg.CSRFHeader) != "1" {
			s.refuseCSRF(w, r, csrfMissingHeader, "missing "+s.cfg.CSRFHeader+" header")
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
			s.refuseCSRF(w, r, csrfCrossSite, "cross-site request refused")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != s.origin {
			s.refuseCSRF(w, r, csrfStreamOrigin, "origin not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuseCSRF answers 403 and counts the refusal by kind.
func (s *Server) refuseCSRF(w http.ResponseWriter, r *http.Request, kind csrfKind, reason string) {
	s.metrics.csrfRefusals[kind].Inc()
	s.writeError(w, r, errCSRF(reason))
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

// csrfHeaderProblem says why name cannot be the CSRF header, or "". The
// defence rests on the browser refusing to send the header cross-site
// without a CORS preflight, which the BFF never grants. Browsers send
// CORS-safelisted headers (and Chromium its safelisted client hints)
// cross-site without a preflight, so any page could forge them; forbidden
// headers cannot be set by the SPA's own scripts at all.
func csrfHeaderProblem(name string) string {
	if !isToken(name) {
		return "is not a valid header name"
	}
	lower := strings.ToLower(name)
	switch lower {
	case "accept", "accept-language", "content-language", "content-type", "range",
		"device-memory", "dpr", "downlink", "ect", "rtt", "save-data", "viewport-width", "width":
		return "is CORS-safelisted: browsers send it cross-site without a preflight, so it proves nothing"
	case "accept-charset", "accept-encoding", "access-control-request-headers", "access-control-request-method",
		"connection", "content-length", "cookie", "cookie2", "date", "dnt", "expect", "host", "keep-alive",
		"origin", "referer", "set-cookie", "te", "trailer", "transfer-encoding", "upgrade", "via",
		"x-http-method", "x-http-method-override", "x-method-override", "authorization":
		return "is a header the BFF or the browser controls; choose a custom name such as X-CSRF"
	}
	if strings.HasPrefix(lower, "proxy-") || strings.HasPrefix(lower, "sec-") {
		return "is a header the BFF or the browser controls; choose a custom name such as X-CSRF"
	}
	return ""
}
