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
// login (sets a login-state cookie), callback (drops it, sets the session
// cookie), a failed callback (drops its login-state cookie), a second login
// (replaces the session) and logout (expires the session cookie) — and checks
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
					seen[cookieKind(c)] = true
				}
			}
			// The rules above are only as good as the cookies they saw.
			for _, kind := range []string{"session set", "session deleted", "login set", "login deleted"} {
				if !seen[kind] {
					t.Errorf("no Set-Cookie of kind %q was emitted; saw %v", kind, seen)
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

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Path
}
