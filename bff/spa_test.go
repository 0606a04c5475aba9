package bff_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestSPAServing(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	nav := http.Header{"Sec-Fetch-Mode": {"navigate"}, "Accept": {"text/html"}}
	script := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(readBody(t, b.get(t, "/", nil)))
	if script == nil {
		t.Fatal("index.html loads no script from /assets/")
	}
	asset := script[1]

	for _, c := range []struct {
		path   string
		header http.Header
		status int
		html   bool
	}{
		{"/", nil, 200, true},
		{"/index.html", nil, 200, true},
		{"/settings/profile", nav, 200, true}, // a client-side route
		{"/settings/profile", http.Header{"Accept": {"application/json"}}, 404, false},
		{asset, nil, 200, false},
		{"/assets/missing.js", nil, 404, false},
	} {
		resp := b.get(t, c.path, c.header)
		body := readBody(t, resp)
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.status)
		}
		if got := strings.Contains(body, "<!doctype html>"); got != c.html {
			t.Errorf("GET %s: HTML %v, want %v", c.path, got, c.html)
		}
		for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("GET %s: no %s", c.path, h)
			}
		}
	}
	if resp := b.get(t, asset, nil); !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("asset Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if resp := b.get(t, "/", nil); resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("index Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	resp := b.do(t, http.MethodPost, st.bff.URL+"/settings", nil)
	assertJSONError(t, resp, http.StatusNotFound, "not_found")
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Error("CSP without frame-ancestors 'none'")
	}
}
