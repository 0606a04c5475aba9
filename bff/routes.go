package bff

import (
	"net/http"
	"strings"
)

// routes is the whole browser-facing surface and the guard on each route.
// The guards are wrappers, outermost first:
//
//	requireCSRF     X-CSRF: 1 header (a WebSocket upgrade: Origin is the
//	                public origin), and not Sec-Fetch-Site: cross-site
//	requireStream   not cross-site; Origin, when sent, is the public origin
//	requireSession  a live session cookie (401 contract otherwise)
//	perAddress      a budget per client address (BFF_LOGIN_RATE_LIMIT), 429 beyond
//
// Three routes guard themselves, because their guard is what the request is
// about: the callback checks its login-state cookie, logout that the sid
// parameter names the cookie's session (400 otherwise, never 401), and
// back-channel logout its signed logout token. The event stream and
// token=user and token=optional API routes read the session themselves,
// after attaching to its kill signal (attachSession), so that a kill during
// the read is not missed.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := s.cfg.Prefix

	mux.Handle("GET "+p+"/login", s.perAddress(s.loginLimit, s.handle(s.handleLogin)))
	mux.Handle("GET "+p+"/callback", s.perAddress(s.callbackLimit, s.handle(s.countLogin(s.handleCallback))))
	mux.Handle("GET "+p+"/user", s.requireCSRF(s.requireSession(s.handleUser)))
	mux.Handle("GET "+p+"/logout", s.handle(s.handleLogout))
	mux.Handle("POST "+p+"/logout", s.handle(s.handleLogout))
	mux.Handle("POST "+p+"/backchannel-logout", s.handle(s.handleBackchannel))
	mux.Handle("GET "+p+"/session/events", s.requireStream(s.handle(s.handleEvents))) // session after attach
	mux.Handle("GET "+p+"/sessions", s.requireCSRF(s.requireSession(s.handleListDevices)))
	mux.Handle("DELETE "+p+"/sessions", s.requireCSRF(s.requireSession(s.handleEndOtherDevices)))    // others=true
	mux.Handle("DELETE "+p+"/sessions/{handle}", s.requireCSRF(s.requireSession(s.handleEndDevice))) // the user's own handle
	mux.Handle(p+"/", s.handle(notFound))
	mux.Handle(p, s.handle(notFound)) // not a redirect to p+"/"

	for _, route := range s.cfg.Routes {
		// Any method: the route's own method list is checked by the proxy,
		// so a refused method is a JSON 405 rather than the SPA.
		mux.Handle(route.Prefix, s.requireCSRF(s.proxy(route))) // session after attach, unless token=client or none
		// The prefix without its slash is outside the route: 404, where
		// ServeMux would otherwise redirect it into the route.
		mux.Handle(strings.TrimSuffix(route.Prefix, "/"), s.handle(notFound))
	}

	mux.Handle("/", s.handleSPA()) // public; GET page navigations only
	return mux
}

func notFound(w http.ResponseWriter, r *http.Request) error {
	return errNotFound()
}
