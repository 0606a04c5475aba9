package main

// Process tests of the proxy's hardening against a real `bff serve`: dot
// segments with parameters, upgrades and method overrides that must not
// reach the API, private caching of token-bearing responses, the cap on a
// session's event streams, and a CSRF header name that would defeat the
// preflight.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// seenUpstream records the paths and headers an API behind the BFF
// receives, and answers as a cacheable resource that tries to set a cookie.
type seenUpstream struct {
	mu      sync.Mutex
	paths   []string
	headers []http.Header
}

func (u *seenUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.paths = append(u.paths, r.URL.EscapedPath())
	u.headers = append(u.headers, r.Header.Clone())
	u.mu.Unlock()
	w.Header().Set("Cache-Control", "public, max-age=600")
	w.Header().Set("Set-Cookie", "api=1")
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{}`))
}

func (u *seenUpstream) seen() ([]string, []http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.paths...), append([]http.Header(nil), u.headers...)
}

func TestServeHardenedProxy(t *testing.T) {
	s := newProcStack(t, procStackOptions{})
	up := &seenUpstream{}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	p := s.startBFF(t, "hardened", "memory:", "BFF_ROUTES=/api/="+s.apiURL+",/rec/="+upSrv.URL+"/base;strip")
	br := s.newLBBrowser()
	defer br.close()
	br.login(t, p, "alice", "alice-pass")

	do := func(path string, hdr http.Header) (int, http.Header, []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := http.Header{"X-Csrf": {"1"}, "Accept": {"application/json"}}
		for k, v := range hdr {
			h[k] = v
		}
		resp, err := br.get(ctx, p, path, h)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body := drainBody(resp)
		return resp.StatusCode, resp.Header, body
	}

	t.Run("dot segments with parameters are refused", func(t *testing.T) {
		for _, path := range []string{
			"/rec/..;/x", "/rec/.;/x", "/rec/a/..;/..;/x", "/rec/..%3B/x", "/rec/..%3b/x",
			"/rec/%252e%252e/x", "/rec/%252e%252e;/x", "/rec/.%252e/x", "/rec/..%253B/x",
			"/api/..;/x", "/api/%252e%252e/x",
		} {
			if code, _, body := do(path, nil); code != http.StatusBadRequest || !strings.Contains(string(body), `"bad_path"`) {
				t.Errorf("GET %s: %d %.200s, want 400 bad_path", path, code, body)
			}
		}
		if paths, _ := up.seen(); len(paths) != 0 {
			t.Errorf("the API received %q", paths)
		}
	})

	t.Run("no h2c upgrade or method override reaches the API", func(t *testing.T) {
		smuggled := http.Header{
			"Upgrade":                {"h2c"},
			"Connection":             {"Upgrade, HTTP2-Settings"},
			"Http2-Settings":         {"AAMAAABkAARAAAAAAAIAAAAA"},
			"X-Http-Method-Override": {"DELETE"},
			"X-Http-Method":          {"DELETE"},
			"X-Method-Override":      {"DELETE"},
		}
		code, _, body := do("/api/headers", smuggled)
		if code != http.StatusOK {
			t.Fatalf("/api/headers: %d %.300s", code, body)
		}
		var seen map[string]string
		if err := json.Unmarshal(body, &seen); err != nil {
			t.Fatalf("/api/headers: %v: %.300s", err, body)
		}
		if !strings.HasPrefix(seen["authorization"], "Bearer <valid") {
			t.Fatalf("the API did not get the user's token: %q", seen["authorization"])
		}
		for _, name := range []string{"upgrade", "http2-settings", "x-http-method-override", "x-http-method", "x-method-override"} {
			if v, ok := seen[name]; ok {
				t.Errorf("the API received %s: %q", name, v)
			}
		}
		if strings.Contains(strings.ToLower(seen["connection"]), "upgrade") {
			t.Errorf("the API received Connection %q", seen["connection"])
		}
	})

	t.Run("token-bearing responses are private", func(t *testing.T) {
		code, h, _ := do("/rec/items", nil)
		if code != http.StatusOK {
			t.Fatalf("/rec/items: %d", code)
		}
		if cc := h.Get("Cache-Control"); cc != "private, max-age=600" {
			t.Errorf("/rec/items: Cache-Control %q, want private, max-age=600", cc)
		}
		if v := h.Values("Set-Cookie"); len(v) != 0 {
			t.Errorf("/rec/items: the API's Set-Cookie reached the browser: %q", v)
		}
		paths, headers := up.seen()
		if len(paths) != 1 || paths[0] != "/base/items" || !strings.HasPrefix(headers[0].Get("Authorization"), "Bearer ") {
			t.Errorf("the API received %q without the token", paths)
		}
		code, h, _ = do("/api/whoami", nil)
		if cc := h.Get("Cache-Control"); code != http.StatusOK || (cc != "no-store" && !strings.HasPrefix(cc, "private")) {
			t.Errorf("/api/whoami: %d, Cache-Control %q, want private or no-store", code, cc)
		}
	})

	t.Run("the 17th event stream of a session is refused", func(t *testing.T) {
		for range 16 {
			br.openStream(t, p, "/bff/session/events", false)
		}
		code, _, body := do("/bff/session/events", http.Header{"Accept": {"text/event-stream"}})
		if code != http.StatusTooManyRequests || !strings.Contains(string(body), `"too_many_streams"`) {
			t.Errorf("17th stream: %d %.200s, want 429 too_many_streams", code, body)
		}
	})
}

// A CSRF header that browsers send cross-site without a preflight would
// leave the API unprotected: `bff serve` must refuse to start with it.
func TestServeRefusesASafelistedCSRFHeader(t *testing.T) {
	s := newProcStack(t, procStackOptions{})
	home := filepath.Join(s.tmp, "home-csrf")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bffBinary(t), "serve")
	cmd.Env = append(cleanEnv(home),
		"BFF_ISSUER="+s.op.Issuer(),
		"BFF_CLIENT_ID="+procClientID,
		"BFF_CLIENT_SECRET="+procClientSecret,
		"BFF_PUBLIC_URL="+s.publicURL,
		"BFF_LISTEN="+freeAddr(t),
		"BFF_ADMIN_LISTEN="+freeAddr(t),
		"BFF_ADMIN_TOKEN="+procAdminToken,
		"BFF_KEYS="+s.keys,
		"BFF_ROUTES=/api/="+s.apiURL,
		"BFF_STORE=memory:",
		"BFF_CSRF_HEADER=Accept-Language",
	)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("bff serve with BFF_CSRF_HEADER=Accept-Language was still running after 30s:\n%s", out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("bff serve with BFF_CSRF_HEADER=Accept-Language: %v, want a failed start\n%s", err, out)
	}
	if !strings.Contains(string(out), "BFF_CSRF_HEADER") || !strings.Contains(string(out), "Accept-Language") {
		t.Errorf("the start-up error does not name BFF_CSRF_HEADER and its value:\n%s", out)
	}
}
