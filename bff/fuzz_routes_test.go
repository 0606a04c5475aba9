package bff

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"reflect"
	"strings"
	"testing"
)

// FuzzProxyPath feeds request paths through the path guard and the proxy's
// rewrite. Whatever passes the guard must mean one thing to every reader:
// ServeMux does not clean it into another path, and the path the upstream
// receives, read as a servlet container would (";parameters" dropped from
// segments, "\" as "/", dot segments resolved) after zero, one or two
// rounds of percent-decoding, stays under the route's base path.
func FuzzProxyPath(f *testing.F) {
	for _, seed := range []string{
		"/api/x", "/api/", "/v2/items", "/v2/items;v=1", "/v2/a..b/c", "/v2/...",
		"/v2/..;/x", "/v2/.;/x", "/v2/a/..;/..;/x", "/v2/..%3B/x", "/v2/%252e%252e/x",
		"/v2/.%252e/x", "/v2/..%253B/x", "/api/../bff/user", "/api/%2e%2e/x", "/v2/a%2fb",
		"/v2/a%5c..%5cb", "/v2//x", "/v2/x%00", "/v2/%25", "/v2/a\\..\\b",
	} {
		f.Add(seed)
	}
	s := &Server{cfg: Config{CSRFHeader: "X-CSRF"}}
	routes := []Route{
		{Prefix: "/api/", Upstream: &url.URL{Scheme: "http", Host: "api.test", Path: "/up"}, Token: TokenUser},
		{Prefix: "/v2/", Upstream: &url.URL{Scheme: "http", Host: "api.test", Path: "/base"}, Token: TokenUser, StripPrefix: true},
	}
	f.Fuzz(func(t *testing.T, raw string) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://bff.test"+raw, nil)
		if err != nil || req.URL.Host != "bff.test" || req.URL.RawQuery != "" || req.URL.Fragment != "" {
			return // not a request path net/http would hand to the BFF
		}
		escaped := req.URL.EscapedPath()
		if ambiguousPath(escaped) != "" {
			return
		}
		if !strings.HasPrefix(escaped, "/") {
			t.Fatalf("%q passed the guard without a leading /", escaped)
		}
		if p := req.URL.Path; muxClean(p) != p {
			t.Fatalf("%q passed the guard but ServeMux reads it as %q", p, muxClean(p))
		}
		for _, route := range routes {
			if !strings.HasPrefix(req.URL.Path, route.Prefix) {
				continue
			}
			pr := &httputil.ProxyRequest{In: req, Out: req.Clone(req.Context())}
			s.rewrite(route)(pr)
			base := route.Upstream.Path + "/"
			if !route.StripPrefix {
				base = route.Upstream.Path + route.Prefix
			}
			out := pr.Out.URL.EscapedPath()
			for round, p := 0, out; round <= 2; round++ {
				if got := servletPath(p); !strings.HasPrefix(got+"/", base) {
					t.Fatalf("%q on route %s reaches the upstream as %q, read as %q after %d decodings: outside %s",
						raw, route.Prefix, out, got, round, base)
				}
				next, err := url.PathUnescape(p)
				if err != nil {
					break
				}
				p = next
			}
		}
	})
}

// muxClean is the cleaning ServeMux applies before matching: path.Clean,
// keeping a trailing slash.
func muxClean(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// servletPath reads p as Tomcat or Spring would: "\" as "/", ";params"
// dropped from every segment, dot segments resolved.
func servletPath(p string) string {
	segs := strings.Split(strings.ReplaceAll(p, "\\", "/"), "/")
	for i, seg := range segs {
		segs[i], _, _ = strings.Cut(seg, ";")
	}
	return path.Clean("/" + strings.Join(segs, "/"))
}

// FuzzParseRoutes feeds BFF_ROUTES values to the parser: it never panics,
// and whatever it accepts is a valid allowlist: clean prefixes, absolute
// http(s) upstreams, a known token mode and methods that are HTTP tokens.
// Blank entries and surrounding spaces change nothing.
func FuzzParseRoutes(f *testing.F) {
	for _, seed := range []string{
		"/api/=http://127.0.0.1:9000",
		"/api/=http://127.0.0.1:9000;token=none;methods=GET|POST;strip",
		"/api/=https://api.example.com/base;strip, /public/=http://10.0.0.5:8080;token=none",
		"/api/=http://h;methods=",
		"/api/=http://h;methods=get| post",
		"/api/=http://h;methods=G ET",
		"/api/=http://h;token=admin",
		"/api/=http://h;nope",
		"/api/=ftp://h",
		"/api/=http://",
		"/api/..;/=http://h",
		"/a%2e/=http://h",
		"api=http://h",
		"/api/=http://user:secret@h",
		"/api/=http://h/%zz",
		",,,",
		"=",
		";;",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		routes, err := ParseRoutes(s)
		if err != nil {
			return
		}
		for _, r := range routes {
			if err := r.validate(); err != nil {
				t.Fatalf("ParseRoutes(%q) accepted an invalid route: %v", s, err)
			}
			if ambiguousPath(r.Prefix) != "" || muxClean(r.Prefix) != r.Prefix {
				t.Fatalf("ParseRoutes(%q) accepted the prefix %q", s, r.Prefix)
			}
			if r.Upstream.Host == "" || (r.Upstream.Scheme != "http" && r.Upstream.Scheme != "https") {
				t.Fatalf("ParseRoutes(%q) accepted the upstream %q", s, r.Upstream)
			}
			for _, m := range r.Methods {
				if !isToken(m) || m != strings.ToUpper(m) {
					t.Fatalf("ParseRoutes(%q) accepted the method %q", s, m)
				}
			}
		}
		again, err := ParseRoutes(" , " + s + " ,")
		if err != nil || !reflect.DeepEqual(again, routes) {
			t.Fatalf("ParseRoutes(%q) changes with blank entries around it: %v %v", s, again, err)
		}
	})
}
