package bff_test

import (
	"net/http"
	"testing"

	"github.com/bffproxy/bff/bff"
)

// dotParamPaths are dot segments that servlet containers (Tomcat, Jetty,
// Spring) read as "." or "..": with a ;parameter, with an encoded ";", or
// encoded twice. Each must be refused before routing.
var dotParamPaths = []string{
	"/v2/..;/x",
	"/v2/.;/x",
	"/v2/a/..;/..;/x",
	"/v2/..;jsessionid=1/x",
	"/v2/..%3B/x",
	"/v2/..%3b/x",
	"/v2/.%3B/x",
	"/v2/%252e%252e/x",
	"/v2/%252E%252E/x",
	"/v2/%252e/x",
	"/v2/.%252e/x",
	"/v2/%252e%252e;/x",
	"/v2/..%253B/x",
	"/v2/x/..%253b",
}

func TestProxyRefusesDotSegmentsWithParameters(t *testing.T) {
	rec := &headerRecorder{}
	st := mustStartStack(t, stackOptions{upstream: rec, configure: func(c *bff.Config) {
		c.Routes = append(c.Routes, bff.Route{Prefix: "/v2/", Upstream: mustURL(t, st0(c)+"/base"), Token: bff.TokenUser, StripPrefix: true})
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	for _, p := range dotParamPaths {
		rec.mu.Lock()
		rec.last = nil
		rec.mu.Unlock()
		resp := b.get(t, p, csrf())
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 400", p, resp.StatusCode)
			continue
		}
		assertJSONError(t, resp, http.StatusBadRequest, "bad_path")
		if up := rec.request(); up != nil {
			t.Errorf("GET %s reached the upstream as %s", p, up.URL.Path)
		}
	}
	// Parameters on ordinary segments, and dots inside names, still pass.
	for p, want := range map[string]string{
		"/v2/items;v=1": "/base/items;v=1",
		"/v2/a..b/c":    "/base/a..b/c",
		"/v2/.well":     "/base/.well",
		"/v2/...":       "/base/...",
	} {
		if resp := b.get(t, p, csrf()); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", p, resp.StatusCode)
		} else if up := rec.request(); up == nil || up.URL.Path != want {
			t.Errorf("GET %s: upstream path %v, want %s", p, up, want)
		}
	}
}

// st0 is the upstream of the stack's first route.
func st0(c *bff.Config) string { return c.Routes[0].Upstream.String() }
