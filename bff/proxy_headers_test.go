package bff_test

import (
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/bffproxy/bff/bff"
)

// An h2c upgrade must not reach the API: a lenient upstream would switch
// protocols and give the browser a raw tunnel past the route and method
// allowlists. Only WebSocket upgrades are relayed.
func TestProxyForwardsOnlyWebSocketUpgrades(t *testing.T) {
	rec := &headerRecorder{}
	st := mustStartStack(t, stackOptions{upstream: rec})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	for _, h := range []http.Header{
		{"Upgrade": {"h2c"}, "Connection": {"Upgrade, HTTP2-Settings"}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}},
		{"Upgrade": {"h2c"}, "Connection": {"Upgrade"}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}},
		{"Upgrade": {"TLS/1.2"}, "Connection": {"Upgrade"}},
	} {
		h.Set("X-Csrf", "1")
		resp := b.get(t, "/api/x", h)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%v: status %d", h, resp.StatusCode)
		}
		up := rec.request()
		for _, name := range []string{"Upgrade", "Http2-Settings"} {
			if v := up.Header.Get(name); v != "" {
				t.Errorf("request with Upgrade %q: the API received %s: %q", h.Get("Upgrade"), name, v)
			}
		}
		if headerHas(up.Header, "Connection", "upgrade") {
			t.Errorf("request with Upgrade %q: the API received Connection %q", h.Get("Upgrade"), up.Header.Values("Connection"))
		}
	}
}

// Method-override headers would let a request that passed a route's
// methods= list act as another method at an API that honours them.
func TestProxyStripsMethodOverrideHeaders(t *testing.T) {
	rec := &headerRecorder{}
	st := mustStartStack(t, stackOptions{upstream: rec, configure: func(c *bff.Config) {
		c.Routes[0].Methods = []string{"GET"}
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	resp := b.get(t, "/api/x", http.Header{
		"X-Csrf":                 {"1"},
		"X-Http-Method-Override": {"DELETE"},
		"X-Http-Method":          {"DELETE"},
		"X-Method-Override":      {"DELETE"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, name := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"} {
		if v := rec.request().Header.Get(name); v != "" {
			t.Errorf("the API received %s: %q", name, v)
		}
	}
}

// A shared cache in front of the BFF sees requests with a cookie, not with
// Authorization, so HTTP's rule that responses to Authorization requests
// are not shared no longer protects them: the BFF marks them private.
func TestProxyTokenResponsesArePrivate(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cc := r.URL.Query().Get("cc"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Write([]byte("{}"))
	})
	st := mustStartStack(t, stackOptions{upstream: upstream, configure: func(c *bff.Config) {
		c.Routes = append(c.Routes, bff.Route{Prefix: "/public/", Upstream: c.Routes[0].Upstream, Token: bff.TokenNone})
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	for _, tt := range []struct{ path, upstream, want string }{
		{"/api/x", "", "private"},
		{"/api/x", "public, max-age=60", "private, max-age=60"},
		{"/api/x", "max-age=60, s-maxage=600", "private, max-age=60"},
		{"/api/x", `private="Set-Cookie", max-age=10`, "private, max-age=10"},
		{"/api/x", "no-cache", "private, no-cache"},
		{"/api/x", "no-store", "no-store"},
		{"/api/x", "max-age=0, No-Store", "max-age=0, No-Store"},
		{"/public/x", "public, max-age=60", "public, max-age=60"},
	} {
		path := tt.path
		if tt.upstream != "" {
			path += "?cc=" + strings.NewReplacer(" ", "%20", "=", "%3D", `"`, "%22", ",", "%2C").Replace(tt.upstream)
		}
		resp := b.get(t, path, csrf())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		if got := strings.Join(resp.Header.Values("Cache-Control"), ", "); got != tt.want {
			t.Errorf("%s with upstream Cache-Control %q: %q, want %q", tt.path, tt.upstream, got, tt.want)
		}
	}
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// An upstream's 103 Early Hints must not set cookies in the browser (the
// BFF owns them), and must not cost the final response the BFF's security
// headers.
func TestProxyInformationalResponses(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload; as=style")
		w.Header().Set("Set-Cookie", "early=from-the-api")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Del("Set-Cookie")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	})
	st := mustStartStack(t, stackOptions{upstream: upstream})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	var mu sync.Mutex
	var early []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		early = append(early, h)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, st.bff.URL+"/api/x", nil)
	req.Header.Set("X-Csrf", "1")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(early) != 1 {
		t.Fatalf("got %d informational responses, want the one 103", len(early))
	}
	if v := early[0].Values("Set-Cookie"); len(v) != 0 {
		t.Errorf("103 carried the API's Set-Cookie %q", v)
	}
	if early[0].Get("Link") == "" {
		t.Errorf("103 lost its Link header: %v", early[0])
	}
	for _, name := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy", "X-Request-Id"} {
		if resp.Header.Get(name) == "" {
			t.Errorf("final response after a 103 lacks %s", name)
		}
	}
	if got := resp.Header.Get("Cache-Control"); got != "private" {
		t.Errorf("final response after a 103: Cache-Control %q, want private", got)
	}
	for _, c := range b.Jar.Cookies(mustURL(t, st.bff.URL)) {
		if c.Name == "early" {
			t.Errorf("the browser kept the API's cookie %q", c.Name)
		}
	}
}
