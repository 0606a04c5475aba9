package bff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// Error is an error with two faces: what the client is told (Status, Code,
// Message) and what only the log sees (Err). Handlers return it; writeError
// renders it. Keeping them apart is what stops an IdP's or upstream's error
// body, or a token inside it, from reaching the browser by accident.
type Error struct {
	Status  int
	Code    string // machine-readable, e.g. "login_required"
	Message string // safe for the browser
	Err     error  // internal detail, logged only
	// RetryAfter, when set, is sent as Retry-After.
	RetryAfter time.Duration
	// LoginLink adds a "login" member (and a WWW-Authenticate header for 401).
	LoginLink bool
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	}
	return e.Code
}

func (e *Error) Unwrap() error { return e.Err }

// Errors the handlers share.
func errUnauthenticated(code string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Message: "sign-in required", LoginLink: true}
}

// errSessionExpired is the 401 for a session that can no longer get a
// usable access token; err says why, for the log.
func errSessionExpired(err error) *Error {
	e := errUnauthenticated("session_expired")
	e.Err = err
	return e
}

func errCSRF(reason string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "csrf_failed", Message: reason}
}

func errStoreUnavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
		Message: "session store unavailable; try again shortly", Err: err, RetryAfter: 5 * time.Second}
}

// errRateLimited is the 429 for a client address that spent its budget.
func errRateLimited(message string, retryAfter time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: message, RetryAfter: max(retryAfter, time.Second)}
}

// writeError renders err as JSON (API calls and /bff endpoints) or as a small
// HTML page (top-level navigations), with the request id, and logs it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error", Err: err}
	}
	id := requestID(r.Context())
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	if e.Err != nil || e.Status >= 500 {
		attrs := []slog.Attr{slog.String("request_id", id), slog.Int("status", e.Status), slog.String("code", e.Code), slog.String("path", r.URL.Path)}
		if e.Err != nil {
			attrs = append(attrs, slog.String("error", e.Err.Error()))
		}
		s.logger.LogAttrs(r.Context(), level, "request failed", attrs...)
	}

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
	}
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `BFF error="`+e.Code+`"`)
	}
	if isNavigation(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(e.Status)
		_ = errorPage.Execute(w, map[string]any{
			"Status": e.Status, "Code": e.Code, "Message": e.Message, "RequestID": id,
			"Login": s.cfg.Prefix + "/login",
		})
		return
	}
	body := map[string]string{"error": e.Code, "message": e.Message, "requestId": id}
	if e.LoginLink {
		body["login"] = s.cfg.Prefix + "/login"
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// isNavigation reports whether the browser is loading a page (rather than
// fetch or XHR), so errors can be a readable page instead of JSON: by
// Sec-Fetch-Mode when the browser sends it, else a GET or HEAD accepting HTML.
func isNavigation(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r)
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in problem</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
<h1>Something went wrong</h1>
<p>{{.Message}}</p>
<p><a href="{{.Login}}">Try signing in again</a> · <a href="/">Back to the application</a></p>
<p style="color:#666; font-size: 0.9em">Error {{.Status}} ({{.Code}}), request {{.RequestID}}</p>
</body></html>
`))

// storeErr classifies a store error for a handler that looked up a session.
// Anything but "not found" is a 503, never a 401: an outage must not look
// like a logout.
func storeErr(err error) *Error {
	if errors.Is(err, context.Canceled) {
		return &Error{Status: 499, Code: "canceled", Message: "request canceled", Err: err}
	}
	if errors.Is(err, sessionstore.ErrNotFound) {
		return errUnauthenticated("login_required")
	}
	return errStoreUnavailable(err)
}

// redirect answers 302 with only a Location header. http.Redirect would
// also write the target into an HTML body, and the end-session target holds
// an id_token_hint: one copy of it in the browser is enough.
func redirect(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusFound)
}
