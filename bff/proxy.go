package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"

	"github.com/bffproxy/bff/sessionstore"
)

type proxyCallKey struct{}

// proxyCall is what one proxied request carries from the handler to the
// ReverseProxy hooks.
type proxyCall struct {
	token   string                // the access token to attach; "" for none
	sess    *sessionstore.Session // nil on a route without a token
	cut     func()                // ends the request (as if its session had ended, on a session's route)
	release func()                // gives back the stream's place, once it has one
}

// proxy relays one allowlisted route to its upstream. The upstream gets the
// user's access token as a bearer token and nothing of the browser's
// credentials: Cookie, the CSRF header and any Authorization the browser
// sent are removed, hop-by-hop headers are dropped by ReverseProxy, and
// X-Forwarded-* are set from the real connection; method overrides and any
// upgrade but WebSocket are removed (see rewrite). Set-Cookie from the
// upstream is dropped: the browser's cookies belong to the BFF. Responses
// fetched with the user's token are marked private for shared caches.
//
// The token is refreshed, if it must be, before anything is written, so a
// rotated refresh token is never lost to a response already under way. The
// request is bound to its session before the session is read, so ending the
// session at any moment cuts it; event streams and WebSockets also re-read
// the session every heartbeat and count toward the stream caps.
func (s *Server) proxy(route Route) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite:    s.rewrite(route),
		Transport:  s.upstreamTransport(route),
		BufferPool: s.proxyBuffers,
		// ReverseProxy flushes event streams and responses of unknown length
		// as they arrive; everything else is buffered briefly.
		FlushInterval: 0,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del("Set-Cookie")
			resp.Header.Del("Set-Cookie2")
			if resp.Request.Header.Get("Authorization") != "" {
				privateCacheControl(resp.Header)
			}
			if su, ok := upstreamStepUp(resp); ok && route.Token != TokenClient && route.Token != TokenNone {
				// The API wants a stronger or more recent sign-in: the SPA
				// gets the BFF's step_up_required, never the API's body.
				// (On a route without the user's token a sign-in would not
				// help: the API's answer passes as any other.)
				return errStepUpRequired(su, fmt.Errorf("route %s: upstream asks for step-up", route.Prefix))
			}
			if call, _ := resp.Request.Context().Value(proxyCallKey{}).(*proxyCall); call != nil && isStream(resp) {
				return s.startStream(resp.Request.Context(), call)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var e *Error
			if !errors.As(err, &e) {
				e = upstreamError(r.Context(), route, err)
			}
			if call, _ := r.Context().Value(proxyCallKey{}).(*proxyCall); call != nil && call.sess != nil && sessionCut(r.Context()) {
				e = s.endedError(context.WithoutCancel(r.Context()), call.sess.Key)
			}
			s.writeError(w, r, e)
		},
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}

	security := newFixedHeaders(s.cfg.StrictTransportSecurity())
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		w = &informationalGuard{ResponseWriter: w, req: r, security: security}
		if len(route.Methods) > 0 && !slices.Contains(route.Methods, r.Method) {
			w.Header().Set("Allow", strings.Join(route.Methods, ", "))
			return errMethodNotAllowed()
		}
		call := &proxyCall{}
		defer func() {
			if call.release != nil {
				call.release()
			}
		}()
		ctx := r.Context()
		switch route.Token {
		case TokenClient:
			token, err := s.routeClientToken(ctx, route)
			if err != nil {
				return err
			}
			call.token = token
		case TokenUser, TokenOptional, TokenExchange:
			userCtx, att, err := s.userToken(r, route, call)
			defer att.detach()
			if err != nil {
				return err
			}
			ctx = userCtx
		}
		if call.cut == nil {
			// A stream without a session can still be cut, by Drain.
			cutCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			ctx, call.cut = cutCtx, cancel
		}
		// One copy of the request, with everything its context needs.
		rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, proxyCallKey{}, call)))
		return nil
	})
}

// userToken fills call with the user's session and access token for a
// token=user or token=optional route, and returns the request's context
// bound to that session (ending it cuts the request) and the attachment
// whose detach unbinds it (nil-safe: call it also when err is not nil).
// On a token=optional route a request without a live session goes on
// without a token; on a token=user route it is the 401.
func (s *Server) userToken(r *http.Request, route Route, call *proxyCall) (context.Context, *attachment, error) {
	ctx, att, sess, err := s.attachSession(r, false)
	if err != nil && route.Token == TokenOptional && signedOut(err) {
		att.detach()
		return r.Context(), nil, nil
	}
	if err == nil && !acrSatisfies(route.ACR, sess.Claims["acr"]) {
		err = errStepUpRequired(stepUp{ACRValues: route.ACR, MaxAge: -1},
			fmt.Errorf("route %s: session acr %q is not one the route accepts", route.Prefix, sess.Claims["acr"]))
	}
	if err == nil {
		if route.ownToken() {
			call.token, err = s.routeAccessToken(ctx, sess, route)
		} else {
			call.token, err = s.accessToken(ctx, sess)
		}
	}
	if att != nil && sessionCut(ctx) {
		return nil, att, s.endedError(context.WithoutCancel(ctx), att.key)
	}
	if err != nil {
		return nil, att, err
	}
	s.touch(ctx, sess)
	call.sess, call.cut = sess, att.cut
	return ctx, att, nil
}

// signedOut reports whether err says the request has no live session (the
// 401 contract), rather than that the session could not be read.
func signedOut(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusUnauthorized
}

// rewrite builds the request to the upstream: the route's URL, forwarded
// headers from the real connection, none of the browser's credentials, and
// the user's access token when the route carries one.
func (s *Server) rewrite(route Route) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		pr.SetURL(route.Upstream)
		if route.StripPrefix {
			pr.Out.URL.Path = singleJoin(route.Upstream.Path, "/"+strings.TrimPrefix(pr.In.URL.Path, route.Prefix))
			pr.Out.URL.RawPath = ""
		}
		// Rewrite starts with no X-Forwarded-* at all; the browser's are
		// believed only from a trusted proxy in front of the BFF.
		trusted := s.fromTrustedProxy(pr.In)
		if trusted {
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
		}
		pr.SetXForwarded()
		if trusted {
			for _, name := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v := pr.In.Header.Get(name); v != "" {
					pr.Out.Header.Set(name, v)
				}
			}
		}
		h := pr.Out.Header
		h.Del("Cookie")
		h.Del("Authorization")
		h.Del(s.cfg.CSRFHeader)
		h.Del("Forwarded")
		dropUnsafeUpgrade(h)
		for _, name := range methodOverrideHeaders {
			h.Del(name)
		}
		if !trusted {
			// The browser does not choose the trace an upstream joins.
			h.Del("Traceparent")
			h.Del("Tracestate")
		}
		if call, _ := pr.In.Context().Value(proxyCallKey{}).(*proxyCall); call != nil && call.token != "" {
			h.Set("Authorization", "Bearer "+call.token)
		}
	}
}

// startStream admits a long-lived upstream response (an event stream or a
// WebSocket) under the stream caps, and watches it for as long as it stays
// open (see watchStream).
func (s *Server) startStream(ctx context.Context, call *proxyCall) error {
	key := ""
	if call.sess != nil {
		key = call.sess.Key
	}
	release, err := s.streams.acquire(key)
	if err != nil {
		return err
	}
	call.release = release
	go s.watchStream(ctx, call)
	return nil
}

// informationalGuard stands between ReverseProxy and the browser for 1xx
// responses. ReverseProxy relays an upstream's 103 Early Hints by copying
// its headers into the response's header map, writing it, and clearing the
// map: the 1xx would set the API's cookies in the browser, and the final
// response would lose the BFF's security headers and request id. The guard
// drops Set-Cookie from every 1xx and puts those headers back on the final
// response. 101 Switching Protocols is a final response and passes as it is.
type informationalGuard struct {
	http.ResponseWriter
	req           *http.Request
	security      fixedHeaders
	informational bool // a 1xx was written, the final response was not
}

func (g *informationalGuard) WriteHeader(code int) {
	h := g.ResponseWriter.Header()
	switch {
	case code >= 100 && code < 200 && code != http.StatusSwitchingProtocols:
		h.Del("Set-Cookie")
		h.Del("Set-Cookie2")
		g.informational = true
	case g.informational:
		g.informational = false
		g.security.apply(h)
		h.Set("X-Request-Id", requestID(g.req.Context()))
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *informationalGuard) Write(b []byte) (int, error) {
	if g.informational {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack, which
// ReverseProxy needs for streams and WebSocket upgrades.
func (g *informationalGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// methodOverrideHeaders make some frameworks treat a request as another
// method: a POST allowed by a route's methods= list could act as a DELETE.
var methodOverrideHeaders = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

// dropUnsafeUpgrade keeps only WebSocket upgrades. ReverseProxy relays any
// Upgrade the browser asks for; an "h2c" upgrade accepted by a lenient
// upstream would turn the connection into a raw HTTP/2 tunnel whose
// requests the BFF never sees, past the route and method allowlists.
// HTTP2-Settings belongs to that upgrade only.
func dropUnsafeUpgrade(h http.Header) {
	if up := h.Get("Upgrade"); up != "" && !strings.EqualFold(up, "websocket") {
		h.Del("Upgrade")
		h.Del("Connection")
	}
	h.Del("HTTP2-Settings")
}

// privateCacheControl marks a response fetched with the user's token as
// private. A shared cache in front of the BFF sees a request with a cookie,
// not with Authorization, so HTTP's rule that answers to Authorization
// requests are not shared no longer applies; without "private" one user's
// data could be served to another. An API's no-store is kept as it is;
// public, s-maxage and a field-limited private="…" give way to private.
func privateCacheControl(h http.Header) {
	keep := []string{"private"}
	for _, v := range h.Values("Cache-Control") {
		for _, d := range splitDirectives(v) {
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				return
			case "public", "private", "s-maxage", "":
				continue
			}
			keep = append(keep, d)
		}
	}
	h.Set("Cache-Control", strings.Join(keep, ", "))
}

// splitDirectives splits a Cache-Control value at the commas outside
// quoted strings, trimming spaces.
func splitDirectives(v string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i <= len(v); i++ {
		switch {
		case i == len(v) || (v[i] == ',' && !quoted):
			if d := strings.TrimSpace(v[start:i]); d != "" {
				out = append(out, d)
			}
			start = i + 1
		case v[i] == '"':
			quoted = !quoted
		case v[i] == '\\' && quoted && i+1 < len(v):
			i++
		}
	}
	return out
}

// upstreamError describes a failed upstream call to the browser without
// its details; the log gets them, with the route.
func upstreamError(ctx context.Context, route Route, err error) *Error {
	err = fmt.Errorf("route %s: %w", route.Prefix, err)
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return errCanceled(err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errUpstreamTimeout(err)
	default:
		return errUpstreamUnavailable(err)
	}
}

func singleJoin(a, b string) string {
	return strings.TrimSuffix(a, "/") + "/" + strings.TrimPrefix(b, "/")
}
