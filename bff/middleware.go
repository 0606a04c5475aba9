package bff

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

type requestIDKey struct{}

// withRequestID gives every request an id, returned in X-Request-Id and in
// every error body, so a user's report can be matched with the log.
//
// Ids need to be unique, not secret: a random per-process prefix and a
// counter cost one small allocation instead of a read of crypto/rand.
func withRequestID(next http.Handler) http.Handler {
	prefix := randomString(6) // 8 characters
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8 + 1 + 13]byte
		id := string(strconv.AppendUint(append(append(b[:0], prefix...), '-'), seq.Add(1), 36))
		w.Header()["X-Request-Id"] = []string{id}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// statusRecorder remembers the status for the access log and metrics. It
// passes Flush and Hijack through (via Unwrap and http.ResponseController)
// so streams and WebSocket upgrades keep working.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe counts every request and, when enabled, writes one access-log
// line. The line has the path but never the query (it may carry a code or a
// state) and never a header value.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.metrics.requestsByClass[statusClass(rec.status)].Inc()
		if s.cfg.LogRequests && s.logger.Enabled(r.Context(), slog.LevelInfo) {
			attrs := [...]slog.Attr{
				slog.String("request_id", requestID(r.Context())),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Duration("duration", time.Since(start)),
				{},
			}
			n := len(attrs) - 1
			if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
				attrs[n], n = slog.String("trace_id", sc.TraceID().String()), n+1
			}
			s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs[:n]...)
		}
	})
}

// statusClass is the index of the status's class in requestsByClass: 0 for
// 1xx (and anything below) … 4 for 5xx (and anything above).
func statusClass(code int) int {
	return min(max(code/100, 1), 5) - 1
}

// securityHeaders applies to every response the BFF itself writes. The CSP
// allows only same-origin scripts, styles, connections and images, and no
// framing (clickjacking); proxied API responses get the same headers, which
// is harmless for JSON and protective if an upstream ever returns HTML.
//
// The values are built once and shared by every response (net/http only
// reads them; Set and Add replace or copy a slice, never write into it), so
// the headers cost no allocation per request.
//
// hsts, when not empty, is sent as Strict-Transport-Security.
func securityHeaders(hsts string, next http.Handler) http.Handler {
	fixed := newFixedHeaders(hsts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fixed.apply(w.Header())
		next.ServeHTTP(w, r)
	})
}

// fixedHeaders are the security headers every response carries.
type fixedHeaders []struct {
	name  string
	value []string
}

func newFixedHeaders(hsts string) fixedHeaders {
	fixed := fixedHeaders{
		{"Content-Security-Policy", []string{"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Referrer-Policy", []string{"no-referrer"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
	}
	if hsts != "" {
		fixed = append(fixed, fixedHeaders{{"Strict-Transport-Security", []string{hsts}}}...)
	}
	for i := range fixed {
		fixed[i].value = slices.Clip(fixed[i].value)
	}
	return fixed
}

func (f fixedHeaders) apply(h http.Header) {
	for _, x := range f {
		h[x.name] = x.value
	}
}

// rejectAmbiguousPaths refuses any path that different parsers could read
// differently: dot segments, empty segments, backslashes, NUL and other
// control characters, and encoded slashes, backslashes or dots. A proxy that
// cleaned such a path and an upstream that did not (or the reverse) would
// disagree about which resource is meant, and "/api/../admin" or
// "/api/%2e%2e/admin" could reach an upstream path the route never allowed.
// Refusing them (400) is simpler and safer than cleaning them.
func (s *Server) rejectAmbiguousPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := ambiguousPath(r.URL.EscapedPath()); reason != "" {
			s.writeError(w, r, errBadPath(reason))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func ambiguousPath(escaped string) string {
	if !strings.HasPrefix(escaped, "/") {
		return "must start with /"
	}
	lower := strings.ToLower(escaped)
	for _, enc := range []string{"%2f", "%5c", "%2e", "%00"} {
		if strings.Contains(lower, enc) {
			return "encoded separator or dot"
		}
	}
	if strings.Contains(escaped, "//") {
		return "empty segment"
	}
	if hasDotSegment(escaped) {
		return "dot segment"
	}
	for i := 0; i < len(escaped); i++ {
		if c := escaped[i]; c == '\\' || c < 0x20 || c == 0x7f {
			return "backslash or control character"
		}
	}
	// Percent-encoded control characters and backslash.
	for i := 0; i+2 < len(lower); i++ {
		if lower[i] == '%' && (lower[i+1] == '0' || lower[i+1] == '1' || lower[i+1:i+3] == "7f") {
			return "encoded control character"
		}
	}
	return ""
}

// hasDotSegment reports whether any segment of the escaped path is "." or
// "..", read as it is, or after one or two rounds of percent-decoding, and
// with any ";parameter" removed. Tomcat, Jetty and Spring treat "..;x" as
// "..", and an upstream that decodes twice turns "%252e%252e" into "..": a
// request for "/api/..;/admin" would leave a strip route's base path while
// carrying the user's token.
func hasDotSegment(escaped string) bool {
	p := escaped
	for round := 0; round <= 2; round++ {
		for _, seg := range strings.FieldsFunc(p, isPathSeparator) {
			name, _, _ := strings.Cut(seg, ";")
			if name == "." || name == ".." {
				return true
			}
		}
		next := unescapeLenient(p)
		if next == p {
			break
		}
		p = next
	}
	return false
}

func isPathSeparator(r rune) bool { return r == '/' || r == '\\' }

// unescapeLenient decodes every valid %XX and keeps anything else as it is,
// as the most forgiving upstream would.
func unescapeLenient(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// clientIP is the address of the party that connected, or, when that
// party is a trusted proxy, the last address its X-Forwarded-For names that
// is not itself a trusted proxy. Inbound X-Forwarded-* from anyone else is
// ignored: a browser must not pick the IP an admin sees or an upstream logs.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(addr) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return host
		}
		if !s.trusted(a) {
			return a.String()
		}
	}
	return host
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fromTrustedProxy reports whether the connection itself comes from a
// trusted proxy, whose X-Forwarded-Proto and -Host may be believed.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && s.trusted(a)
}
