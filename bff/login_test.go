package bff_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
)

// startLogin begins a login and returns the authorize URL and the login
// state cookie the BFF set.
func startLogin(t *testing.T, b *browser, returnTo string) (*url.URL, *http.Cookie) {
	t.Helper()
	resp := b.get(t, "/bff/login?returnTo="+url.QueryEscape(returnTo), nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	u, _ := url.Parse(resp.Header.Get("Location"))
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Fatalf("authorize URL lacks PKCE/state/nonce: %s", u)
	}
	c := findSetCookie(resp, "bff-login-"+q.Get("state")[:16])
	if c == nil || c.SameSite != http.SameSiteLaxMode || !c.HttpOnly || c.MaxAge != 600 {
		t.Fatalf("login state cookie: %+v", c)
	}
	return u, c
}

// authorize completes the OP side for an authorize URL and returns the
// callback URL the OP redirects to.
func authorize(t *testing.T, b *browser, authorizeURL *url.URL) *url.URL {
	t.Helper()
	resp, err := b.st.op.Login(t.Context(), b.Client, authorizeURL.String(), "alice", "alice-pass")
	if err != nil {
		t.Fatalf("OP login: %v", err)
	}
	u, _ := url.Parse(resp.Header.Get("Location"))
	return u
}

func TestCallbackRejects(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	nav := http.Header{"Sec-Fetch-Mode": {"navigate"}, "Accept": {"text/html"}}

	t.Run("unknown state", func(t *testing.T) {
		b := st.newBrowser(t)
		resp := b.get(t, "/bff/callback?code=x&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nav)
		assertErrorPage(t, resp, http.StatusBadRequest, "unknown_state")
	})

	t.Run("state that matches the cookie name but not the cookie", func(t *testing.T) {
		b := st.newBrowser(t)
		authz, _ := startLogin(t, b, "/")
		cb := authorize(t, b, authz)
		q := cb.Query()
		q.Set("state", q.Get("state")[:16]+"tampered-tampered-tampered")
		cb.RawQuery = q.Encode()
		assertErrorPage(t, b.getURL(t, cb.String(), nav), http.StatusBadRequest, "unknown_state")
	})

	t.Run("reused state", func(t *testing.T) {
		b := st.newBrowser(t)
		authz, loginCookie := startLogin(t, b, "/")
		cb := authorize(t, b, authz)
		if resp := b.getURL(t, cb.String(), nil); resp.StatusCode != http.StatusFound {
			t.Fatalf("first callback: %d", resp.StatusCode)
		}
		// Replay the same callback with a copy of the login cookie.
		attacker := st.newBrowser(t)
		resp := attacker.getURL(t, cb.String(), http.Header{"Cookie": {loginCookie.Name + "=" + loginCookie.Value}, "Sec-Fetch-Mode": {"navigate"}})
		assertErrorPage(t, resp, http.StatusBadRequest, "state_reused")
		if findSetCookie(resp, "bff-session") != nil {
			t.Error("replayed callback set a session cookie")
		}
	})

	t.Run("wrong nonce", func(t *testing.T) {
		b := st.newBrowser(t)
		authz, _ := startLogin(t, b, "/")
		q := authz.Query()
		q.Set("nonce", "an-attacker-chosen-nonce")
		authz.RawQuery = q.Encode()
		cb := authorize(t, b, authz)
		assertErrorPage(t, b.getURL(t, cb.String(), nav), http.StatusBadRequest, "nonce_mismatch")
	})

	t.Run("wrong iss", func(t *testing.T) {
		b := st.newBrowser(t)
		authz, _ := startLogin(t, b, "/")
		cb := authorize(t, b, authz)
		q := cb.Query()
		q.Set("iss", "https://evil.example")
		cb.RawQuery = q.Encode()
		assertErrorPage(t, b.getURL(t, cb.String(), nav), http.StatusBadRequest, "issuer_mismatch")
	})

	t.Run("IdP error", func(t *testing.T) {
		b := st.newBrowser(t)
		authz, _ := startLogin(t, b, "/")
		resp := b.get(t, "/bff/callback?error=access_denied&error_description=%3Cscript%3E&state="+authz.Query().Get("state"), nav)
		body := assertErrorPage(t, resp, http.StatusBadRequest, "idp_error")
		if !strings.Contains(body, "access_denied") || strings.Contains(body, "<script>") || !strings.Contains(body, `href="/bff/login"`) {
			t.Errorf("IdP error page: %s", body)
		}
	})

	t.Run("bad code", func(t *testing.T) {
		b := st.newBrowser(t)
		authz, _ := startLogin(t, b, "/")
		cb := authorize(t, b, authz)
		q := cb.Query()
		q.Set("code", "not-a-code")
		cb.RawQuery = q.Encode()
		assertErrorPage(t, b.getURL(t, cb.String(), nav), http.StatusBadGateway, "code_exchange_failed")
	})
}

// TestCallbackRejectsIDTokenForAnotherAudience puts a tampering proxy in
// front of the OP's token endpoint that swaps the ID token for one the OP
// signed for another client: signature and issuer are right, the audience
// is not.
func TestCallbackRejectsIDTokenForAnotherAudience(t *testing.T) {
	var st *stack
	tamper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(r.Method, st.op.Issuer()+"/oauth/token", bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var tok map[string]any
		json.NewDecoder(resp.Body).Decode(&tok)
		if raw, ok := tok["id_token"].(string); ok {
			claims := decodeJWTClaims(t, raw)
			claims["aud"] = []string{"another-client"}
			claims["azp"] = "another-client"
			forged, err := st.op.SignLogoutToken(claims)
			if err != nil {
				t.Errorf("sign: %v", err)
			}
			tok["id_token"] = forged
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(tok)
	}))
	defer tamper.Close()
	st = mustStartStack(t, stackOptions{tamperProvider: func(p *bff.Provider) {
		if !strings.HasSuffix(p.OAuth2.Endpoint.TokenURL, "/oauth/token") {
			t.Fatalf("unexpected token URL %s", p.OAuth2.Endpoint.TokenURL)
		}
		p.OAuth2.Endpoint.TokenURL = tamper.URL
	}})
	b := st.newBrowser(t)
	authz, _ := startLogin(t, b, "/")
	cb := authorize(t, b, authz)
	resp := b.getURL(t, cb.String(), http.Header{"Sec-Fetch-Mode": {"navigate"}})
	assertErrorPage(t, resp, http.StatusBadRequest, "invalid_id_token")
	if !strings.Contains(st.logs.String(), "audience") {
		t.Errorf("rejected for another reason than the audience:\n%s", st.logs.String())
	}
	if findSetCookie(resp, "bff-session") != nil {
		t.Error("a session was created")
	}
}

func TestLoginReturnToHostileValuesFallBackToRoot(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	// One hostile value end to end; the table of values is in returnto_test.go.
	resp := b.login(t, "alice", "alice-pass", "//evil.example/phish")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback: %d to %q, want 302 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestTwoTabsLogInAtOnce(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	authzA, _ := startLogin(t, b, "/a")
	authzB, _ := startLogin(t, b, "/b")
	cbA := authorize(t, b, authzA)
	cbB := authorize(t, b, authzB)
	if resp := b.getURL(t, cbB.String(), nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/b" {
		t.Fatalf("tab B: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := b.getURL(t, cbA.String(), nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/a" {
		t.Fatalf("tab A: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func assertErrorPage(t *testing.T, resp *http.Response, status int, code string) string {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("Content-Type %q, want an HTML page", resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, "("+code+")") {
		t.Errorf("page does not name %q: %s", code, body)
	}
	return body
}

func decodeJWTClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
