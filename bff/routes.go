package bff

import (
	"net/http"
	"strings"
)

// routes is the whole browser-facing surface and the guard on each route.
//
//	guard        meaning
//	csrf         X-CSRF: 1 header, and not Sec-Fetch-Site: cross-site
//	stream       not cross-site; Origin, when sent, is the public origin
//	session      a live session cookie (401 contract otherwise)
//	sid          the sid parameter names the cookie's session
//	logout token a signed OIDC logout token from the IdP
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := s.cfg.Prefix

	mux.Handle("GET "+p+"/login", s.handle(s.handleLogin))                                   // public
	mux.Handle("GET "+p+"/callback", s.handle(s.countLogin(s.handleCallback)))               // login state cookie
	mux.Handle("GET "+p+"/user", s.requireCSRF(s.handle(s.handleUser)))                      // csrf, session
	mux.Handle("GET "+p+"/logout", s.handle(s.handleLogout))                                 // session, sid
	mux.Handle("POST "+p+"/logout", s.handle(s.handleLogout))                                // session, sid
	mux.Handle("POST "+p+"/backchannel-logout", s.handle(s.handleBackchannel))               // logout token
	mux.Handle("GET "+p+"/session/events", s.requireStream(s.handle(s.handleEvents)))        // stream, session
	mux.Handle("GET "+p+"/sessions", s.requireCSRF(s.handle(s.handleListDevices)))           // csrf, session
	mux.Handle("DELETE "+p+"/sessions", s.requireCSRF(s.handle(s.handleEndOtherDevices)))    // csrf, session; others=true
	mux.Handle("DELETE "+p+"/sessions/{handle}", s.requireCSRF(s.handle(s.handleEndDevice))) // csrf, session, own handle
	mux.Handle(p+"/", s.handle(notFound))
	mux.Handle(p, s.handle(notFound)) // not a redirect to p+"/"

	for _, route := range s.cfg.Routes {
		// Any method: the route's own method list is checked by the proxy,
		// so a refused method is a JSON 405 rather than the SPA.
		mux.Handle(route.Prefix, s.requireCSRF(s.proxy(route))) // csrf, session if token=user
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
