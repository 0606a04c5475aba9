package bff

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bffproxy/bff/sessionstore"
)

// AdminHandler serves the admin API, metrics and health checks. It belongs
// on its own listener (default 127.0.0.1:9091), never the public one.
//
//	route                              guard
//	GET    /                           none (the console page; its calls need the token)
//	GET    /console/{console.js,.css}  none
//	GET    /healthz                    none (liveness)
//	GET    /readyz                     none (store and IdP reachable)
//	GET    /metrics                    bearer token
//	GET    /admin/sessions[?sub=…]     bearer token
//	DELETE /admin/sessions/{handle}    bearer token
//	DELETE /admin/users/{sub}/sessions bearer token
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", s.handle(s.handleReady))
	mux.Handle("GET /metrics", s.requireAdmin(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})))
	mux.Handle("GET /admin/sessions", s.requireAdmin(s.handle(s.handleListSessions)))
	mux.Handle("DELETE /admin/sessions/{handle}", s.requireAdmin(s.handle(s.handleKillSession)))
	mux.Handle("DELETE /admin/users/{sub}/sessions", s.requireAdmin(s.handle(s.handleKillUser)))
	mux.Handle("GET /{$}", handleConsole("index.html", "text/html; charset=utf-8"))
	mux.Handle("GET /console/console.js", handleConsole("console.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /console/console.css", handleConsole("console.css", "text/css; charset=utf-8"))
	mux.Handle("/", s.handle(notFound))
	return withRequestID(mux)
}

// adminAuth checks the admin bearer token in constant time (comparing
// hashes, so not even the length leaks) and slows down guessing with a
// per-address budget of failures.
//
// The token is checked before the budget, and only failures spend it: the
// right token always works. Everyone behind one address (every loopback
// caller, every pod behind a sidecar) shares that address's budget, so a
// budget that also refused the right token would let anyone there lock the
// operators out of their own kill switch.
type adminAuth struct {
	tokenHash [32]byte
	enabled   bool
	failures  *addrLimiter
}

const (
	// adminFailureLimit failures per adminFailureWindow, per address.
	adminFailureLimit  = 10
	adminFailureWindow = time.Minute
	// maxTrackedAddrs bounds every per-address table of the BFF.
	maxTrackedAddrs = 10000
)

func newAdminAuth(token string) *adminAuth {
	return &adminAuth{
		tokenHash: sha256.Sum256([]byte(token)),
		enabled:   token != "",
		failures:  newAddrLimiter(adminFailureLimit, adminFailureWindow, maxTrackedAddrs),
	}
}

func (a *adminAuth) check(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !a.enabled {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) == 1
}

func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.adminAuth.check(r) {
			next.ServeHTTP(w, r)
			return
		}
		addr, _, _ := net.SplitHostPort(r.RemoteAddr)
		now := time.Now()
		s.metrics.adminAuthFailures.Inc()
		if !s.adminAuth.failures.Allowed(addr, now) {
			s.writeError(w, r, errRateLimited("too many failed attempts", s.adminAuth.failures.RetryAfter(addr, now)))
			return
		}
		s.adminAuth.failures.Spend(addr, now)
		w.Header().Set("WWW-Authenticate", `Bearer realm="bff-admin"`)
		e := errAdminUnauthorized()
		writeJSON(w, e.Status, map[string]string{"error": e.Code, "message": e.Message, "requestId": requestID(r.Context())})
	})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return errNotReady(err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "issuer": s.idp.Issuer})
	return nil
}

// AdminSession is a session as admins see it, in the admin API's JSON and
// in the CLI that reads it: never a token or cookie value.
type AdminSession struct {
	Handle    string    `json:"handle"`
	Sub       string    `json:"sub"`
	IdPSID    string    `json:"idpSid,omitempty"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"lastSeen"`
	Expires   time.Time `json:"expires"`
	UserAgent string    `json:"userAgent,omitempty"`
	ClientIP  string    `json:"clientIp,omitempty"`
}

func toAdminSession(sess *sessionstore.Session) AdminSession {
	return AdminSession{
		Handle: sess.Handle, Sub: sess.Subject, IdPSID: sess.IdPSID,
		Created: sess.CreatedAt.UTC(), LastSeen: sess.LastSeen.UTC(), Expires: sess.ExpiresAt.UTC(),
		UserAgent: sess.UserAgent, ClientIP: sess.ClientIP,
	}
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var (
		list []*sessionstore.Session
		next string
		err  error
	)
	if q.Has("sub") {
		sub := q.Get("sub")
		if sub == "" {
			return errEmptySubject()
		}
		list, err = s.store.ListBySubject(r.Context(), sub)
	} else {
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 || limit > 1000 {
			limit = 100
		}
		list, next, err = s.store.List(r.Context(), q.Get("cursor"), limit)
	}
	if err != nil {
		return errStoreUnavailable(err)
	}
	out := make([]AdminSession, 0, len(list))
	for _, sess := range list {
		out = append(out, toAdminSession(sess))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out, "next": next})
	return nil
}

func (s *Server) handleKillSession(w http.ResponseWriter, r *http.Request) error {
	handle := r.PathValue("handle")
	sess, err := s.store.GetByHandle(r.Context(), handle)
	if isNotFound(err) || handle == "" {
		return errUnknownHandle()
	}
	if err != nil {
		return errStoreUnavailable(err)
	}
	ended, err := s.endSession(r.Context(), sess.Key, sessionstore.CauseAdmin, adminActor(r))
	if err != nil {
		return errStoreUnavailable(err)
	}
	n := 0
	if ended != nil {
		n = 1
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
	return nil
}

func (s *Server) handleKillUser(w http.ResponseWriter, r *http.Request) error {
	sub := r.PathValue("sub")
	if strings.TrimSpace(sub) == "" {
		return errEmptySubject()
	}
	list, err := s.store.ListBySubject(r.Context(), sub)
	if err != nil {
		return errStoreUnavailable(err)
	}
	n, err := s.endSessions(r.Context(), list, sessionstore.CauseAdmin, adminActor(r))
	if err != nil {
		return errStoreUnavailable(fmt.Errorf("ended %d sessions of %d: %w", n, len(list), err))
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
	return nil
}

// adminActor names who asked, for the audit line: the admin API has one
// credential, so the actor is "admin" and the caller's address.
func adminActor(r *http.Request) string {
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	return "admin@" + addr
}
