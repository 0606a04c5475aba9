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
	"strings"
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
	// StepUp, on a step_up_required error, is what the sign-in must
	// achieve; the login link then asks the IdP for it.
	StepUp *stepUp
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	}
	return e.Code
}

func (e *Error) Unwrap() error { return e.Err }

// The client error codes. Every error a client can see is built by one of
// the constructors below, each with its status, code and message in one
// literal; nowhere else in the package is an Error literal written. The
// README's table of error codes is checked against them (errors_test.go).

// Sessions and their guards.

func errLoginRequired() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "login_required", Message: "sign-in required", LoginLink: true}
}

// errSessionExpired is the 401 for a session that can no longer get a
// usable access token, or that timed out; err says why, for the log.
func errSessionExpired(err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "session_expired", Message: "sign-in required", LoginLink: true, Err: err}
}

// errSessionEnded is the 401 for a session ended by logout, an admin kill or
// the IdP.
func errSessionEnded() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "session_ended", Message: "sign-in required", LoginLink: true}
}

// errStepUpRequired is the 401 for a call that needs a stronger or more
// recent sign-in than the session's (RFC 9470): an upstream's
// insufficient_user_authentication challenge, or a route's acr= option.
// The upstream's own body never reaches the browser.
func errStepUpRequired(su stepUp, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "step_up_required",
		Message: "a stronger or more recent sign-in is required", LoginLink: true, StepUp: &su, Err: err}
}

func errCSRF(reason string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "csrf_failed", Message: reason}
}

func errBadPath(reason string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_path", Message: "path not allowed: " + reason}
}

func errStoreUnavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
		Message: "session store unavailable; try again shortly", Err: err, RetryAfter: 5 * time.Second}
}

// errCanceled is for a client that went away before its answer: 499,
// nginx's "client closed request", so the log does not mistake it for a
// failure of ours (it is below 500).
func errCanceled(err error) *Error {
	return &Error{Status: 499, Code: "canceled", Message: "request canceled", Err: err}
}

func errInternal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error", Err: err}
}

func errNotFound() *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint"}
}

func errNoApp(err error) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no application is bundled", Err: err}
}

// Login and callback. Their messages are shown on an HTML page.

func errLoginStart(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "could not start sign-in", Err: err}
}

// errIdPError reports the IdP's refusal; text must be a code defined by
// OAuth 2.0 or OpenID Connect (idpErrorText), never the IdP's own words.
func errIdPError(text string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "idp_error",
		Message: "The identity provider did not complete the sign-in (" + text + ")."}
}

// errBadLoginRequest refuses /bff/login parameters that cannot be passed
// to the IdP (acr_values, max_age, prompt); message says which.
func errBadLoginRequest(message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: message}
}

// errStepUpNotMet refuses an ID token whose acr is not one that was asked
// for, or whose auth_time is older than the max_age that was asked for:
// the IdP did not perform the sign-in the application needs.
func errStepUpNotMet(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "step_up_failed",
		Message: "The identity provider did not confirm the sign-in that was asked for.", Err: err}
}

func errUnknownState() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "unknown_state", Message: "This sign-in link is unknown or has expired."}
}

func errStateReused() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "state_reused", Message: "This sign-in link was already used."}
}

func errIssuerMismatch(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "issuer_mismatch",
		Message: "The sign-in response came from an unexpected identity provider.", Err: err}
}

func errMissingCode() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "missing_code", Message: "The sign-in response is incomplete."}
}

func errCodeExchange(err error) *Error {
	return &Error{Status: http.StatusBadGateway, Code: "code_exchange_failed",
		Message: "The identity provider refused or failed the sign-in.", Err: err}
}

func errNoIDToken() *Error {
	return &Error{Status: http.StatusBadGateway, Code: "no_id_token", Message: "The identity provider sent no ID token."}
}

func errInvalidIDToken(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_id_token", Message: "The identity provider's ID token is not valid.", Err: err}
}

func errNonceMismatch() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "nonce_mismatch", Message: "The ID token does not belong to this sign-in."}
}

func errSealFailed(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "could not store the session", Err: err}
}

// errRateLimited is the 429 for a client address that spent its budget.
func errRateLimited(message string, retryAfter time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: message, RetryAfter: max(retryAfter, time.Second)}
}

// Logout.

// errInvalidLogout refuses a logout that does not name the cookie's session.
func errInvalidLogout() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_logout", Message: "This sign-out link is not valid for this session."}
}

func errBadLogoutToken(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_logout_token", Message: "logout token rejected", Err: err}
}

// Refresh and proxy.

func errRefreshInProgress(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "refresh_in_progress",
		Message: "the session's tokens are being refreshed; try again shortly", Err: err, RetryAfter: 2 * time.Second}
}

func errIdPUnavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "idp_unavailable",
		Message: "the identity provider is unreachable; try again shortly", Err: err, RetryAfter: 5 * time.Second}
}

// errTokenExchange is a refused or failed RFC 8693 token exchange for a
// token=exchange route; the IdP's answer goes to the log only.
func errTokenExchange(err error) *Error {
	return &Error{Status: http.StatusBadGateway, Code: "token_exchange_failed",
		Message: "the identity provider did not issue a token for this API", Err: err}
}

func errMethodNotAllowed() *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "method not allowed on this route"}
}

// errTooManyStreams refuses a stream beyond the session's share of this
// instance's streams.
func errTooManyStreams(limit int) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "too_many_streams",
		Message: fmt.Sprintf("this session already has %d open streams; close one first", limit)}
}

// errStreamCapacity refuses a stream when this instance holds as many as it
// may; another instance, or this one a little later, can take it.
func errStreamCapacity() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "stream_capacity",
		Message: "too many open streams on this server; try again shortly", RetryAfter: 10 * time.Second}
}

func errUpstreamTimeout(err error) *Error {
	return &Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout", Message: "the API did not answer in time", Err: err}
}

func errUpstreamUnavailable(err error) *Error {
	return &Error{Status: http.StatusBadGateway, Code: "upstream_unavailable", Message: "the API is unreachable", Err: err}
}

// Admin listener.

// errAdminUnauthorized is written by requireAdmin itself, with a Bearer
// challenge instead of the browser-facing one.
func errAdminUnauthorized() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "a valid admin bearer token is required"}
}

func errEmptySubject() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: "sub must not be empty"}
}

func errUnknownHandle() *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no live session with that handle"}
}

func errNotReady(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: "session store unreachable", Err: err}
}

// Your devices.

// errNoSuchDevice: the handle names none of the user's live sessions. An
// unknown handle and another user's handle look the same.
func errNoSuchDevice() *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such session of yours"}
}

// errOthersRequired refuses a DELETE of the whole collection of the
// user's sessions without others=true.
func errOthersRequired() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: "others=true is required: only the other sessions can be ended together"}
}

// writeError renders err as JSON (API calls and /bff endpoints) or as a small
// HTML page (top-level navigations), with the request id, and logs it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = errInternal(err)
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
		h.Set("WWW-Authenticate", `BFF error="`+e.Code+`"`+e.StepUp.challengeParams())
	}
	login := s.cfg.Prefix + "/login"
	if e.StepUp != nil {
		login = e.StepUp.loginURL(s.cfg.Prefix, "/")
	}
	if isNavigation(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(e.Status)
		_ = errorPage.Execute(w, map[string]any{
			"Status": e.Status, "Code": e.Code, "Message": e.Message, "RequestID": id,
			"Login": login,
		})
		return
	}
	body := map[string]any{"error": e.Code, "message": e.Message, "requestId": id}
	if e.LoginLink {
		body["login"] = login
	}
	if su := e.StepUp; su != nil {
		if len(su.ACRValues) > 0 {
			body["acr_values"] = strings.Join(su.ACRValues, " ")
		}
		if su.MaxAge >= 0 {
			body["max_age"] = su.MaxAge
		}
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
		return errCanceled(err)
	}
	if errors.Is(err, sessionstore.ErrNotFound) {
		return errLoginRequired()
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
