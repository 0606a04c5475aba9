// Package bff is the HTTP side of the Backend-for-Frontend: login, callback,
// user, logout, back-channel logout, the API proxy with token relay and
// silent refresh, session events, the admin API and the SPA.
//
// The browser holds one opaque HttpOnly cookie. Tokens stay in the session
// store, sealed; they leave the BFF only as the Authorization header of a
// proxied API call and in calls to the IdP.
package bff

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/bffproxy/bff/sessionstore"
)

// Deps are the BFF's collaborators, all explicit: no globals.
type Deps struct {
	Logger   *slog.Logger
	Config   Config
	Store    sessionstore.Store
	Provider *Provider
	// Static is the SPA's build (index.html and assets); nil serves no SPA.
	Static fs.FS
	// Registry receives the BFF's metrics; nil makes a private registry.
	Registry *prometheus.Registry
	// Tracing exports spans; nil, or a Tracing that is not Enabled, means
	// no tracing and no cost.
	Tracing *Tracing
}

// Server holds the BFF's state. Create it with New; serve Handler on the
// public listener and AdminHandler on the admin listener.
type Server struct {
	logger      *slog.Logger
	cfg         Config
	store       sessionstore.Store
	idp         *Provider
	sealer      *sessionstore.Sealer
	loginCodecs []securecookie.Codec
	cookies     cookieNames
	origin      string // scheme://host[:port] of the public URL
	static      fs.FS

	hub       *hub
	streams   *streamLimits
	refreshes singleflight.Group
	transport http.RoundTripper // plainTransport over NewUpstreamTransport
	metrics   *metrics
	registry  *prometheus.Registry
	tracer    trace.Tracer // nil: tracing off
	adminAuth *adminAuth
	// backchannelFailures budgets invalid logout tokens per address.
	backchannelFailures *addrLimiter
	// loginLimit and callbackLimit budget sign-in starts and callbacks per
	// address; nil when BFF_LOGIN_RATE_LIMIT is 0.
	loginLimit, callbackLimit *addrLimiter

	// proxyBuffers lends every proxied route its copy buffers.
	proxyBuffers *proxyBuffers
	// expiryAudit bounds the store writes that deduplicate expiry audit
	// lines, which a stream of unknown cookies could otherwise drive.
	expiryAudit *addrLimiter
	// accessTokens spares a request the unsealing of an access token that
	// an earlier request of its session already opened.
	accessTokens *openedCache[string]
	// draining is closed by Drain when the instance is shutting down.
	draining  chan struct{}
	drainOnce sync.Once
	// ahead tracks background refreshes of sessions in use.
	ahead *refreshAhead
	// refreshNotices wakes requests waiting for another instance's refresh.
	refreshNotices *refreshNotices
	// clientTokens are the client-credentials tokens of token=client routes.
	clientTokens *clientTokens
	// routeTokenCache spares a request the unsealing of its session's
	// route tokens (resource= and scope= routes).
	routeTokenCache *openedCache[routeTokenSet]
}

// New builds a Server and starts its listener for session-ended events,
// which runs until ctx ends.
func New(ctx context.Context, deps Deps) (*Server, error) {
	cfg := deps.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if deps.Store == nil || deps.Provider == nil || deps.Logger == nil {
		return nil, errors.New("bff: Logger, Store and Provider are required")
	}
	if err := checkTokenExchange(&cfg, deps.Provider); err != nil {
		return nil, err
	}
	sealer, err := sessionstore.NewSealer(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("BFF_KEYS: %w", err)
	}
	codecs, err := newLoginCodecs(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("BFF_KEYS: %w", err)
	}
	pub, _ := url.Parse(cfg.PublicURL)
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var tracer trace.Tracer
	if deps.Tracing.Enabled() {
		tracer = deps.Tracing.Provider.Tracer(tracerName)
	}
	m := newMetrics(reg)
	s := &Server{
		logger:      deps.Logger,
		cfg:         cfg,
		store:       newObservedStore(deps.Store, m, tracer),
		idp:         deps.Provider,
		sealer:      sealer,
		loginCodecs: codecs,
		cookies:     newCookieNames(cfg.PublicURL),
		origin:      pub.Scheme + "://" + pub.Host,
		static:      deps.Static,
		hub:         newHub(),
		streams:     newStreamLimits(cfg.MaxStreams, cfg.MaxSessionStreams),
		transport:   NewProxyTransport(cfg.UpstreamTimeout),
		metrics:     m,
		registry:    reg,
		tracer:      tracer,
		expiryAudit: newAddrLimiter(expiryAuditBurst, expiryAuditWindow, 1),
		adminAuth:   newAdminAuth(cfg.AdminToken),
		draining:    make(chan struct{}),

		backchannelFailures: newAddrLimiter(backchannelFailureLimit, backchannelFailureWindow, maxTrackedAddrs),
		loginLimit:          newAddrLimiter(cfg.LoginRateLimit, time.Minute, maxTrackedAddrs),
		callbackLimit:       newAddrLimiter(cfg.LoginRateLimit, time.Minute, maxTrackedAddrs),
	}
	s.proxyBuffers = newProxyBuffers()
	if counter, ok := storeAs[sessionstore.SessionCounter](s.store); ok {
		reg.MustRegister(newSessionsActive(s.store, counter))
	}
	s.accessTokens = newOpenedCache[string]()
	s.ahead = newRefreshAhead()
	s.refreshNotices = newRefreshNotices()
	s.clientTokens = newClientTokens()
	s.routeTokenCache = newOpenedCache[routeTokenSet]()
	events, err := s.store.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscribe to session events: %w", err)
	}
	go s.relayEvents(events)
	return s, nil
}

// NewUpstreamTransport is the http.Transport shared by every proxied route
// (behind plainTransport, which carries safe plain-http calls itself and
// takes its settings from here). Go's default keeps two idle connections
// per host, which under load makes most requests dial a new connection;
// the BFF keeps enough for its concurrency. It is exported so that the
// baseline proxy measured against the BFF (cmd/bffbench) has the same
// settings.
func NewUpstreamTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // upstreams are reached directly; an env proxy would see tokens
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// NewProxyTransport is the transport of every proxied route: plainTransport
// for safe plain-http calls, NewUpstreamTransport for the rest. It is
// exported so that cmd/bffbench can measure the same proxy path without the
// BFF's session work.
func NewProxyTransport(headerTimeout time.Duration) http.RoundTripper {
	return newPlainTransport(NewUpstreamTransport(headerTimeout))
}

// Handler is the browser-facing handler. Middleware order, outermost first:
// request id → trace span (when tracing is on) → access log and metrics →
// security headers → path guard → routes.
func (s *Server) Handler() http.Handler {
	var h http.Handler = s.routes()
	h = s.rejectAmbiguousPaths(h)
	h = securityHeaders(s.cfg.StrictTransportSecurity(), h)
	h = s.observe(h)
	if s.tracer != nil {
		h = s.traceRequests(h)
	}
	h = withRequestID(h)
	return h
}

// handlerFunc is a handler that may fail; ServeHTTP renders the failure.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(f handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// sessionHandlerFunc is a handler that runs only for a live session.
type sessionHandlerFunc func(w http.ResponseWriter, r *http.Request, sess *sessionstore.Session) error

// requireSession runs f with the live session named by the request's
// cookie, or answers 401 (see loadSession) without running it.
func (s *Server) requireSession(f sessionHandlerFunc) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		sess, err := s.loadSession(r.Context(), r)
		if err != nil {
			return err
		}
		return f(w, r, sess)
	})
}

// loadSession returns the live session named by the request's cookie. No
// cookie, an unknown cookie or an expired session is 401; the code says why
// when a tombstone remembers it (session_ended, session_expired).
func (s *Server) loadSession(ctx context.Context, r *http.Request) (*sessionstore.Session, error) {
	key, err := s.sessionKey(r)
	if err != nil {
		return nil, err
	}
	return s.loadSessionKey(ctx, key)
}

// sessionKey is the store key of the request's session cookie, or the 401
// for a request without one.
func (s *Server) sessionKey(r *http.Request) (string, error) {
	value := s.sessionCookieValue(r)
	if value == "" {
		return "", errLoginRequired()
	}
	return sessionstore.KeyFromCookie(value), nil
}

// loadSessionKey is loadSession for a key from sessionKey.
func (s *Server) loadSessionKey(ctx context.Context, key string) (*sessionstore.Session, error) {
	sess, err := s.store.Get(ctx, key)
	if err == nil && !sess.Live(time.Now()) {
		err = sessionstore.ErrNotFound
	}
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, s.endedError(ctx, key)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return sess, nil
}

// endedError explains a missing session: a tombstone says how it ended.
func (s *Server) endedError(ctx context.Context, key string) *Error {
	tomb, err := s.store.Tombstone(ctx, key)
	if err != nil {
		if isNotFound(err) {
			s.auditExpiry(ctx, key)
		}
		return errLoginRequired()
	}
	switch tomb.Cause {
	case sessionstore.CauseRefreshDenied, sessionstore.CauseExpired:
		return errSessionExpired(nil)
	default:
		return errSessionEnded()
	}
}

// touch records activity at most once per TouchInterval, extending the idle
// deadline. Touch never creates a record, so a session deleted while this
// request was in flight stays deleted.
func (s *Server) touch(ctx context.Context, sess *sessionstore.Session) {
	now := time.Now()
	if now.Sub(sess.LastSeen) < s.cfg.TouchInterval {
		return
	}
	expires := s.sessionExpiry(sess, now)
	if err := s.store.Touch(ctx, sess.Key, now, expires); err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "touch session failed", slog.String("handle", sess.Handle), slog.String("error", err.Error()))
		return
	}
	sess.LastSeen, sess.ExpiresAt = now, expires
}

// sessionExpiry is the one lifetime rule: a session ends at the first of
// its idle deadline (from the last recorded activity) and its absolute
// deadline (from login). Logout, kill, back-channel logout and a refused
// refresh end it earlier by deleting it.
func (s *Server) sessionExpiry(sess *sessionstore.Session, lastSeen time.Time) time.Time {
	idle := lastSeen.Add(s.cfg.IdleTimeout)
	if idle.Before(sess.AbsoluteExpiresAt) {
		return idle
	}
	return sess.AbsoluteExpiresAt
}
