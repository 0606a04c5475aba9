package bff_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bffproxy/bff/bff"
)

// headerRecorder is an upstream that records what it receives and tries
// to set a cookie.
type headerRecorder struct {
	mu   sync.Mutex
	last *http.Request
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.last = r.Clone(context.Background())
	h.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "upstream", Value: "should-not-pass"})
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"path":"` + r.URL.Path + `"}`))
}

func (h *headerRecorder) request() *http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func TestProxyRelaysTokenAndStripsBrowserCredentials(t *testing.T) {
	rec := &headerRecorder{}
	st := mustStartStack(t, stackOptions{upstream: rec})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	resp := b.get(t, "/api/things?q=1", http.Header{
		"X-Csrf":           {"1"},
		"Authorization":    {"Bearer client-supplied"},
		"X-Forwarded-For":  {"6.6.6.6"},
		"X-Forwarded-Host": {"evil.example"},
		"Forwarded":        {"for=6.6.6.6"},
		"Connection":       {"X-Hop"},
		"X-Hop":            {"secret"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied call: %d %s", resp.StatusCode, readBody(t, resp))
	}
	if len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("upstream Set-Cookie reached the browser: %q", resp.Header.Values("Set-Cookie"))
	}
	up := rec.request()
	if up.URL.Path != "/api/things" || up.URL.RawQuery != "q=1" {
		t.Errorf("upstream got %s?%s", up.URL.Path, up.URL.RawQuery)
	}
	auth := up.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || auth == "Bearer client-supplied" || len(auth) < 100 {
		t.Errorf("upstream Authorization = %.30q, want the session's access token", auth)
	}
	claims := decodeJWTClaims(t, strings.TrimPrefix(auth, "Bearer "))
	if claims["sub"] != "user-alice" {
		t.Errorf("access token sub = %v", claims["sub"])
	}
	for _, h := range []string{"Cookie", "X-Csrf", "X-Hop", "Forwarded"} {
		if v := up.Header.Get(h); v != "" {
			t.Errorf("upstream received %s: %q", h, v)
		}
	}
	if xff := up.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the real peer only", xff)
	}
	if xfh := up.Header.Get("X-Forwarded-Host"); xfh != strings.TrimPrefix(st.bff.URL, "http://") {
		t.Errorf("X-Forwarded-Host = %q", xfh)
	}
	if xfp := up.Header.Get("X-Forwarded-Proto"); xfp != "http" {
		t.Errorf("X-Forwarded-Proto = %q", xfp)
	}
}

func TestProxyPathsAndRoutes(t *testing.T) {
	rec := &headerRecorder{}
	st := mustStartStack(t, stackOptions{upstream: rec, configure: func(c *bff.Config) {
		public, _ := url.Parse(c.Routes[0].Upstream.String())
		c.Routes = append(c.Routes,
			bff.Route{Prefix: "/public/", Upstream: public, Token: bff.TokenNone, Methods: []string{"GET"}},
			bff.Route{Prefix: "/v2/", Upstream: mustURL(t, public.String()+"/base"), Token: bff.TokenUser, StripPrefix: true},
		)
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	tests := []struct {
		method, path string
		status       int
		upstreamPath string // "" when the upstream must not be reached
	}{
		{"GET", "/api/x", 200, "/api/x"},
		{"GET", "/api/", 200, "/api/"},
		{"GET", "/api/../bff/user", 400, ""},
		{"GET", "/api/%2e%2e/bff/user", 400, ""},
		{"GET", "/api/%2E%2E/secret", 400, ""},
		{"GET", "/api/.%2e/secret", 400, ""},
		{"GET", "/api/a%2fb", 400, ""},
		{"GET", "/api/a%2Fb", 400, ""},
		{"GET", "//api/x", 400, ""},
		{"GET", "/api//x", 400, ""},
		{"GET", "/api/a%5cb", 400, ""},
		{"GET", "/api/a%00b", 400, ""},
		{"GET", "/apix", 404, ""},
		{"GET", "/api", 404, ""},
		{"GET", "/public/p", 200, "/public/p"},
		{"POST", "/public/p", 405, ""},
		{"GET", "/v2/items", 200, "/base/items"},
	}
	for _, tt := range tests {
		rec.mu.Lock()
		rec.last = nil
		rec.mu.Unlock()
		req, _ := http.NewRequest(tt.method, st.bff.URL+"/", nil)
		req.URL.Opaque = "" // send the path exactly as written
		req.URL.RawPath = tt.path
		req.URL.Path, _ = url.PathUnescape(tt.path)
		req.URL, _ = url.Parse(st.bff.URL + tt.path)
		req.Header.Set("X-Csrf", "1")
		resp, err := b.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
		up := rec.request()
		switch {
		case tt.upstreamPath == "" && up != nil:
			t.Errorf("%s %s reached the upstream as %s", tt.method, tt.path, up.URL.Path)
		case tt.upstreamPath != "" && (up == nil || up.URL.Path != tt.upstreamPath):
			t.Errorf("%s %s: upstream path %v, want %s", tt.method, tt.path, up, tt.upstreamPath)
		}
	}
	// A public route carries no token, even with a session.
	b.api(t, "/public/p")
	if auth := rec.request().Header.Get("Authorization"); auth != "" {
		t.Errorf("public route got Authorization %.20q", auth)
	}
}

func TestProxyWithoutSessionIs401(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	assertUnauthenticated(t, b.api(t, "/api/whoami"), "login_required")
}

func TestProxyCSRF(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	assertJSONError(t, b.get(t, "/api/whoami", nil), http.StatusForbidden, "csrf_failed")
	assertJSONError(t, b.do(t, http.MethodPost, st.bff.URL+"/api/whoami", nil), http.StatusForbidden, "csrf_failed")
	assertJSONError(t, b.get(t, "/api/whoami", http.Header{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"cross-site"}}), http.StatusForbidden, "csrf_failed")
	assertJSONError(t, b.get(t, "/api/whoami", http.Header{"X-Csrf": {"0"}}), http.StatusForbidden, "csrf_failed")
	if resp := b.get(t, "/api/whoami", http.Header{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"same-origin"}}); resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin with header: %d", resp.StatusCode)
	}

	// WebSocket: checked by Origin.
	ws := func(origin string) (*websocket.Conn, *http.Response, error) {
		h := http.Header{"Origin": {origin}}
		return websocket.Dial(t.Context(), strings.Replace(st.bff.URL, "http", "ws", 1)+"/api/ws", &websocket.DialOptions{HTTPClient: b.Client, HTTPHeader: h})
	}
	if _, resp, err := ws("https://evil.example"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket from a foreign origin: err=%v resp=%v", err, resp)
	}
	conn, _, err := ws(st.bff.URL)
	if err != nil {
		t.Fatalf("same-origin WebSocket: %v", err)
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte("ping through the BFF")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := conn.Read(ctx)
	if err != nil || string(msg) != "ping through the BFF" {
		t.Fatalf("WebSocket echo: %q %v", msg, err)
	}
}

func TestProxyStreamsEventsWithoutBuffering(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	start := time.Now()
	resp := b.api(t, "/api/events")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if strings.HasPrefix(line, "data:") {
			break
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("first event after %v, want well under a second", d)
	}
}

func TestSessionDeletedDuringSlowRequestStaysDeleted(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Write([]byte("late"))
	})
	st := mustStartStack(t, stackOptions{upstream: slow, configure: func(c *bff.Config) {
		c.TouchInterval = time.Millisecond // touch on every request
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	time.Sleep(5 * time.Millisecond)

	done := b.apiLater("/api/slow")
	<-arrived
	list, err := st.store.ListBySubject(t.Context(), "user-alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %v %d", err, len(list))
	}
	if _, err := st.store.Delete(t.Context(), list[0].Key, tombstone()); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	if _, err := st.store.Get(t.Context(), list[0].Key); err == nil {
		t.Fatal("the in-flight request resurrected the deleted session")
	}
	assertUnauthenticated(t, b.api(t, "/api/whoami"), "session_ended")
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestProxyUpstreamFailures(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	st := mustStartStack(t, stackOptions{
		upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }),
		configure: func(c *bff.Config) {
			c.UpstreamTimeout = 300 * time.Millisecond
			c.Routes = append(c.Routes, bff.Route{Prefix: "/down/", Upstream: mustURL(t, "http://127.0.0.1:1"), Token: bff.TokenUser})
		},
	})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	assertJSONError(t, b.api(t, "/api/slow"), http.StatusGatewayTimeout, "upstream_timeout")
	resp := b.api(t, "/down/x")
	body := assertJSONError(t, resp, http.StatusBadGateway, "upstream_unavailable")
	if strings.Contains(body["message"], "127.0.0.1") {
		t.Errorf("error leaks upstream detail: %q", body["message"])
	}
}

func TestTrustedProxyForwardedFor(t *testing.T) {
	rec := &headerRecorder{}
	st := mustStartStack(t, stackOptions{upstream: rec, configure: func(c *bff.Config) {
		proxies, _ := bff.ParseTrustedProxies("127.0.0.0/8")
		c.TrustedProxies = proxies
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	resp := b.get(t, "/api/x", http.Header{"X-Csrf": {"1"}, "X-Forwarded-For": {"203.0.113.7"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied: %d", resp.StatusCode)
	}
	if xff := rec.request().Header.Get("X-Forwarded-For"); xff != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For behind a trusted proxy = %q", xff)
	}
}
