package bff_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestAdminConsolePage: the console is served without the token, from the
// binary alone (no other origin), under a CSP without inline script or
// style — and the API it calls still needs the token.
func TestAdminConsolePage(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(st.admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := get("/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("console: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("CSP %q, Cache-Control %q", csp, resp.Header.Get("Cache-Control"))
	}
	if regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`).MatchString(page) || strings.Contains(page, "<style") ||
		regexp.MustCompile(`\sstyle=|\son[a-z]+=`).MatchString(page) {
		t.Error("the page has inline script, style or event handlers")
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 2 {
		t.Fatalf("the page references %d assets", len(refs))
	}
	for _, m := range refs {
		if !strings.HasPrefix(m[1], "/console/") {
			t.Errorf("the page loads %q, not an embedded asset", m[1])
			continue
		}
		resp, body := get(m[1])
		if resp.StatusCode != http.StatusOK || len(body) < 100 || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, %d bytes", m[1], resp.StatusCode, len(body))
		}
		if strings.Contains(body, "localStorage") || strings.Contains(body, "sessionStorage") || strings.Contains(body, "document.cookie") {
			t.Errorf("%s touches browser storage", m[1])
		}
	}
	if resp, _ := get("/admin/sessions?sub=user-alice"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the admin API without the token: %d", resp.StatusCode)
	}
	if resp, _ := get("/console/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
}
