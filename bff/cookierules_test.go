package bff_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestEverySetCookieObeysPrefixRules drives every path that emits a cookie —
// login (sets a login-state cookie, drops stale and surplus ones), callback
// (drops it, sets the session cookie), a failed callback (drops its
// login-state cookie), a second login (replaces the session), logout and
// signing this device out (expire the session cookie) — and checks
// each Set-Cookie against the RFC 6265bis prefix rules, for an http and an
// https public URL. Browsers silently drop a cookie that breaks them, and
// only over https, which a cookie jar without those rules would never show.
func TestEverySetCookieObeysPrefixRules(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			st := mustStartStack(t, stackOptions{tls: scheme == "https"})
			b := st.newBrowser(t)

			b.mustLogin(t, "alice")
			b.mustLogin(t, "alice") // a login over a live session replaces it

			resp := b.get(t, "/bff/login?returnTo=/", nil)
			authorize, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || authorize.Query().Get("state") == "" {
				t.Fatalf("login redirect %q has no state", resp.Header.Get("Location"))
			}
			resp = b.get(t, "/bff/callback?state="+url.QueryEscape(authorize.Query().Get("state")), nil)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("callback without code: %d, want 400", resp.StatusCode)
			}

			resp = b.api(t, "/bff/user")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/bff/user after login: %d — the session cookie did not come back", resp.StatusCode)
			}
			var user struct {
				LogoutURL string `json:"logoutUrl"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&user); err != nil {
				t.Fatal(err)
			}
			if resp = b.get(t, user.LogoutURL, nil); resp.StatusCode != http.StatusFound {
				t.Fatalf("logout: %d", resp.StatusCode)
			}

			// A login state that no longer opens, and more pending sign-ins
			// than a browser may hold: /bff/login drops both kinds.
			prefix := "bff-login-"
			if scheme == "https" {
				prefix = "__Host-bff-login-"
			}
			public, _ := url.Parse(st.bff.URL + "/")
			b.Jar.SetCookies(public, []*http.Cookie{{Name: prefix + "stale0123456789a", Value: "not-sealed", Path: "/"}})
			for range 6 {
				if resp := b.get(t, "/bff/login?returnTo=/", nil); resp.StatusCode != http.StatusFound {
					t.Fatalf("pending sign-in: %d", resp.StatusCode)
				}
			}

			// Signing this device out from "your devices" expires its cookie.
			b.mustLogin(t, "alice")
			resp = b.api(t, "/bff/user")
			var again struct {
				SID string `json:"sid"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&again); err != nil || again.SID == "" {
				t.Fatalf("/bff/user after the last login: %d %v", resp.StatusCode, err)
			}
			if resp := b.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions/"+url.PathEscape(again.SID), csrf()); resp.StatusCode != http.StatusOK {
				t.Fatalf("DELETE own device: %d %s", resp.StatusCode, readBody(t, resp))
			}

			seen := map[string]bool{}
			b.mu.Lock()
			responses := append([]recorded(nil), b.responses...)
			b.mu.Unlock()
			for _, r := range responses {
				for _, line := range r.headers.Values("Set-Cookie") {
					c, err := http.ParseSetCookie(line)
					if err != nil {
						t.Errorf("%s: unparsable Set-Cookie %q: %v", r.url, redactCookie(line), err)
						continue
					}
					for _, v := range prefixRuleViolations(c, scheme) {
						t.Errorf("%s: Set-Cookie %q: %s", pathOf(r.url), redactCookie(line), v)
					}
					if !c.HttpOnly {
						t.Errorf("%s: Set-Cookie %q is not HttpOnly", pathOf(r.url), redactCookie(line))
					}
					if scheme == "https" && !strings.HasPrefix(c.Name, "__Host-") {
						// Without the prefix a sibling subdomain could plant
						// the cookie (session fixation, login CSRF).
						t.Errorf("%s: Set-Cookie %q lacks the __Host- prefix over https", pathOf(r.url), redactCookie(line))
					}
					seen[emitter(r.url)+": "+cookieKind(c)] = true
				}
			}
			// The rules above are only as good as the cookies they saw: every
			// place that emits a cookie must have been reached.
			for _, kind := range []string{
				"/bff/login: login set",
				"/bff/login: login deleted", // stale or one too many
				"/bff/callback: login deleted",
				"/bff/callback: session set",
				"/bff/logout: session deleted",
				"/bff/sessions/{handle}: session deleted",
			} {
				if !seen[kind] {
					t.Errorf("no Set-Cookie %q was emitted; saw %v", kind, seen)
				}
			}
		})
	}
}

// prefixRuleViolations applies RFC 6265bis section 4.1.3: a cookie named
// __Secure-… must be Secure; one named __Host-… must be Secure, have
// Path=/ and no Domain. Either prefix is only accepted from a secure origin.
// Browsers match the prefixes case-insensitively.
func prefixRuleViolations(c *http.Cookie, originScheme string) []string {
	var out []string
	hasPrefix := func(p string) bool { return len(c.Name) >= len(p) && strings.EqualFold(c.Name[:len(p)], p) }
	host, secure := hasPrefix("__Host-"), hasPrefix("__Secure-")
	if (host || secure) && !c.Secure {
		out = append(out, "a prefixed cookie must be Secure")
	}
	if (host || secure) && originScheme != "https" {
		out = append(out, "a prefixed cookie is only accepted from an https origin")
	}
	if host && c.Path != "/" {
		out = append(out, fmt.Sprintf("a __Host- cookie must have Path=/, has %q", c.Path))
	}
	if host && c.Domain != "" {
		out = append(out, fmt.Sprintf("a __Host- cookie must not have a Domain, has %q", c.Domain))
	}
	return out
}

func cookieKind(c *http.Cookie) string {
	kind := "other " + c.Name
	switch {
	case strings.HasSuffix(c.Name, "bff-session"):
		kind = "session"
	case strings.Contains(c.Name, "bff-login-"):
		kind = "login"
	}
	if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
		return kind + " deleted"
	}
	return kind + " set"
}

// redactCookie keeps a failure message free of cookie values.
func redactCookie(line string) string {
	name, rest, _ := strings.Cut(line, "=")
	_, attrs, _ := strings.Cut(rest, ";")
	return name + "=…;" + attrs
}

// emitter names the route a response came from.
func emitter(raw string) string {
	p := pathOf(raw)
	if strings.HasPrefix(p, "/bff/sessions/") {
		return "/bff/sessions/{handle}"
	}
	return p
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Path
}
