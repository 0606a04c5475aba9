package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/memory"
	"github.com/bffproxy/bff/sessionstore/recordcache"
	"github.com/bffproxy/bff/sessionstore/redis"
	"github.com/bffproxy/bff/sessionstore/sqlite"
	"github.com/bffproxy/bff/static"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)
	routeLibraryLogs(logger)
	store, where, err := openStore(ctx, cfg.Store, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("BFF_STORE: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Warn("close session store", slog.String("error", err.Error()))
			return
		}
		logger.Info("session store closed")
	}()
	logger.Info("session store opened", slog.String("store", where))
	tracing, err := startTracing(ctx, logger, getenv)
	if err != nil {
		return err
	}
	return serve(ctx, logger, cfg.Config, store, tracing)
}

// startTracing starts the OTLP trace pipeline when the standard OTEL_*
// variables ask for it (see bff.StartTracing).
func startTracing(ctx context.Context, logger *slog.Logger, getenv func(string) string) (*bff.Tracing, error) {
	tracing, err := bff.StartTracing(ctx, getenv, version)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if tracing.Enabled() {
		logger.Info("exporting traces over OTLP/HTTP")
	}
	return tracing, nil
}

// serve runs the public and admin listeners until ctx ends, and shuts them
// down gracefully. The listeners answer at once: until the IdP has been
// discovered (retried with backoff), /healthz is 200, /readyz and every
// public route 503, so an orchestrator waits instead of restarting the BFF
// in a loop while the IdP is down.
//
// Shutdown (ctx ends, e.g. on SIGTERM): the listeners stop accepting, open
// session-event streams are sent "server-shutdown" and closed, proxied
// streams are cut (see bff.Server.Drain), other requests in flight get BFF_SHUTDOWN_TIMEOUT to finish, then whatever is left is cut.
// The caller closes the store afterwards.
func serve(ctx context.Context, logger *slog.Logger, cfg bff.Config, store sessionstore.Store, tracing *bff.Tracing) error {
	// Deferred first, so it runs last: the spans of requests that the
	// listeners' shutdown let finish are exported too.
	defer func() {
		flushCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer done()
		if err := tracing.Shutdown(flushCtx); err != nil {
			logger.Warn("flushing traces failed", slog.String("error", err.Error()))
		}
	}()
	public := &swappable{}
	public.set(starting(cfg.StrictTransportSecurity()))
	pub, err := listen(logger, "public", cfg.Listen, "BFF_LISTEN", "BFF_TLS_CERT", cfg.TLSCert, cfg.TLSKey, public)
	if err != nil {
		return err
	}
	listeners := []*listener{pub}
	admin := &swappable{}
	if cfg.AdminListen != "off" {
		admin.set(startingAdmin())
		adm, err := listen(logger, "admin", cfg.AdminListen, "BFF_ADMIN_LISTEN", "BFF_ADMIN_TLS_CERT", cfg.AdminTLSCert, cfg.AdminTLSKey, admin)
		if err != nil {
			pub.ln.Close()
			return err
		}
		listeners = append(listeners, adm)
	}
	// Event streams never end by themselves: tell them as soon as the
	// shutdown has closed the listeners.
	var running atomic.Pointer[bff.Server]
	pub.srv.RegisterOnShutdown(func() {
		if s := running.Load(); s != nil {
			s.Drain()
		}
	})
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- l.serve() }()
	}
	// The server's context outlives ctx until the shutdown is over, so that
	// kills from other instances still reach the requests being drained.
	srvCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer func() {
		logger.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
		shutdownAll(logger, cfg.ShutdownTimeout, listeners)
		logger.Info("bff stopped")
	}()
	logger.Info("bff listening", slog.String("public", pub.url()), slog.String("issuer", cfg.Issuer))
	if len(listeners) > 1 {
		logger.Info("admin API listening", slog.String("admin", listeners[1].url()))
	}

	provider, err := bff.Discover(ctx, logger, &cfg, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the IdP
		}
		return err
	}
	server, err := bff.New(srvCtx, bff.Deps{Logger: logger, Config: cfg, Store: store, Provider: provider, Static: static.FS(), Tracing: tracing})
	if err != nil {
		return err
	}
	running.Store(server)
	public.set(server.Handler())
	admin.set(server.AdminHandler())
	logger.Info("bff ready", slog.String("issuer", provider.Issuer))

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	return nil
}

// swappable serves whichever handler was set last.
type swappable struct{ h atomic.Pointer[http.Handler] }

func (s *swappable) set(h http.Handler) { s.h.Store(&h) }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

// starting answers every public request while the IdP is not yet known.
// hsts is the Strict-Transport-Security value ("" for none).
func starting(hsts string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hsts != "" {
			w.Header().Set("Strict-Transport-Security", hsts)
		}
		w.Header().Set("Retry-After", "2")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"error":"starting","message":"waiting for the identity provider"}`)
	})
}

// startingAdmin is alive but not ready.
func startingAdmin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.Handle("/", starting(""))
	return mux
}

// newHTTPServer bounds what a client can make the server hold: header size
// and time, idle connections. No WriteTimeout: streams are long-lived.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// openStore opens the store named by spec:
//
//	""  or "sqlite:"    sqlite at DATADIR/sessions.db
//	"sqlite:PATH"       sqlite at PATH (sqlite:///abs/path also works)
//	"memory:"           in memory; sessions are lost on restart
//	"redis://…" etc.    Redis (see sessionstore/redis for every form)
func openStore(ctx context.Context, spec, dataDir string) (sessionstore.Store, string, error) {
	switch {
	case spec == "memory:" || spec == "memory":
		return memory.New(memory.Options{}), "memory (sessions are lost on restart)", nil
	case spec == "" || strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(spec, "sqlite:"), "//")
		if path == "" {
			path = filepath.Join(dataDir, "sessions.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", fmt.Errorf("create data directory: %w", err)
		}
		st, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			return nil, "", err
		}
		// This process is the database's only writer, so a read cache
		// invalidated by its own writes is exact (kills included).
		return recordcache.New(st, 0), "sqlite " + path, nil
	case strings.HasPrefix(spec, "redis") || strings.HasPrefix(spec, "rediss"):
		st, err := redis.Open(ctx, spec, redis.Options{})
		if err != nil {
			return nil, "", err
		}
		return st, "redis " + sessionstore.RedactURL(spec), nil
	}
	return nil, "", fmt.Errorf("unknown store %q: want sqlite:PATH, memory: or redis://…", sessionstore.RedactURL(spec))
}

// dataDir is BFF_DATA_DIR, or a bff folder in the user's data directory.
func dataDir(getenv func(string) string) string {
	if d := getenv("BFF_DATA_DIR"); d != "" {
		return d
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".local", "share", "bff")
	}
	return filepath.Join(os.TempDir(), "bff")
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// routeLibraryLogs sends go-redis's own messages (connection failures) into
// the structured log. go-redis has one process-wide logger; the binary is
// the process, so main's side is the place to set it.
func routeLibraryLogs(logger *slog.Logger) {
	goredis.SetLogger(redisLogger{logger})
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.LogAttrs(ctx, slog.LevelWarn, "redis: "+fmt.Sprintf(format, v...))
}
