package bff_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/memory"
)

func TestLoginUserLogout(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)

	resp := b.login(t, "alice", "alice-pass", "/dashboard?tab=1")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard?tab=1" {
		t.Fatalf("callback: %d to %q, want 302 to /dashboard?tab=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	sessionCookie := findSetCookie(resp, "bff-session")
	if sessionCookie == nil {
		t.Fatal("callback set no session cookie")
	}
	if !sessionCookie.HttpOnly || sessionCookie.SameSite != http.SameSiteStrictMode || sessionCookie.Path != "/" || sessionCookie.Domain != "" {
		t.Errorf("session cookie attributes: %+v", sessionCookie)
	}

	resp = b.api(t, "/bff/user")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var user struct {
		Sub               string `json:"sub"`
		Name              string `json:"name"`
		Email             string `json:"email"`
		PreferredUsername string `json:"preferred_username"`
		SID               string `json:"sid"`
		LogoutURL         string `json:"logoutUrl"`
		SessionExpiresIn  int64  `json:"sessionExpiresIn"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&user); err != nil {
		t.Fatal(err)
	}
	if user.Sub != "user-alice" || user.Email != "alice@example.com" || user.PreferredUsername != "alice" {
		t.Errorf("user = %+v", user)
	}
	if user.SID == "" || user.LogoutURL != "/bff/logout?sid="+url.QueryEscape(user.SID) || user.SessionExpiresIn <= 0 {
		t.Errorf("sid/logoutUrl/expiry = %q %q %d", user.SID, user.LogoutURL, user.SessionExpiresIn)
	}
	if strings.Contains(user.SID, sessionCookie.Value) || user.SID == sessionCookie.Value {
		t.Error("the public sid reveals the cookie value")
	}
	if st.op.ActiveRefreshTokens("user-alice") != 1 {
		t.Fatalf("OP has %d active refresh tokens for alice, want 1", st.op.ActiveRefreshTokens("user-alice"))
	}

	// Logout: 302 to the OP's end-session endpoint with the hint.
	resp = b.get(t, user.LogoutURL, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d %s", resp.StatusCode, readBody(t, resp))
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), st.op.Issuer()) {
		t.Fatalf("logout redirects to %s, not the OP", loc)
	}
	q := loc.Query()
	if q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") != st.bff.URL+"/" || q.Get("client_id") != testClientID || q.Get("state") == "" {
		t.Errorf("end-session parameters: %v", q)
	}
	if c := findSetCookie(resp, "bff-session"); c == nil || c.MaxAge >= 0 {
		t.Errorf("logout did not expire the session cookie: %+v", c)
	}
	// The OP accepts the end-session request and sends the browser back.
	resp = b.getURL(t, loc.String(), nil)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), st.bff.URL+"/") {
		t.Errorf("OP end-session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The old cookie, replayed, is refused with the reason.
	replay := st.newBrowser(t)
	replayReq := http.Header{"X-Csrf": {"1"}, "Cookie": {sessionCookie.Name + "=" + sessionCookie.Value}}
	resp = replay.get(t, "/bff/user", replayReq)
	assertUnauthenticated(t, resp, "session_ended")

	// The refresh token is dead at the OP.
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 0 {
		t.Errorf("OP still has %d active refresh tokens after logout", n)
	}
	if !strings.Contains(st.logs.String(), "event=logout sub=user-alice") {
		t.Errorf("no audit line for the logout in:\n%s", st.logs.String())
	}
}

func TestUserWithoutSession(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	assertUnauthenticated(t, b.api(t, "/bff/user"), "login_required")

	// A malformed or unknown cookie is the same 401, not an error.
	for _, v := range []string{"garbage", strings.Repeat("x", 5000), "%00%ff", "a=b"} {
		resp := b.get(t, "/bff/user", http.Header{"X-Csrf": {"1"}, "Cookie": {"bff-session=" + v}})
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("cookie %.20q: status %d", v, resp.StatusCode)
		}
	}
}

func TestUserRequiresCSRFHeader(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	resp := b.get(t, "/bff/user", nil)
	assertJSONError(t, resp, http.StatusForbidden, "csrf_failed")
	resp = b.get(t, "/bff/user", http.Header{"X-Csrf": {"1"}, "Sec-Fetch-Site": {"cross-site"}})
	assertJSONError(t, resp, http.StatusForbidden, "csrf_failed")
	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Errorf("with header: %d", resp.StatusCode)
	}
}

func TestLogoutWithWrongSIDChangesNothing(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	for _, path := range []string{"/bff/logout?sid=wrong", "/bff/logout", "/bff/logout?sid="} {
		resp := b.get(t, path, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", path, resp.StatusCode)
		}
		if len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("%s: sent Set-Cookie %q", path, resp.Header.Values("Set-Cookie"))
		}
	}
	// A cross-site request arrives without the cookie (SameSite=Strict).
	stranger := st.newBrowser(t)
	sid := userSID(t, b)
	resp := stranger.do(t, http.MethodPost, st.bff.URL+"/bff/logout?sid="+sid, nil)
	if resp.StatusCode != http.StatusBadRequest || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("cookie-less logout: %d %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Errorf("session did not survive: %d", resp.StatusCode)
	}
}

func TestSecondLoginReplacesSession(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	first := userSID(t, b)
	b.mustLogin(t, "bob")
	if got := userSID(t, b); got == first {
		t.Fatal("second login kept the session handle")
	}
	if _, err := st.store.GetByHandle(t.Context(), first); err == nil {
		t.Error("first session still in the store")
	}
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 0 {
		t.Errorf("alice's refresh token still active (%d)", n)
	}
}

func userSID(t *testing.T, b *browser) string {
	t.Helper()
	resp := b.api(t, "/bff/user")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user: %d", resp.StatusCode)
	}
	var u struct{ SID string }
	json.NewDecoder(resp.Body).Decode(&u)
	return u.SID
}

func findSetCookie(resp *http.Response, suffix string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, suffix) {
			return c
		}
	}
	return nil
}

func assertUnauthenticated(t *testing.T, resp *http.Response, code string) {
	t.Helper()
	if got := resp.Header.Get("WWW-Authenticate"); got != `BFF error="`+code+`"` {
		t.Errorf("WWW-Authenticate = %q, want error=%q", got, code)
	}
	body := assertJSONError(t, resp, http.StatusUnauthorized, code)
	if body["login"] != "/bff/login" {
		t.Errorf("401 body has login %q", body["login"])
	}
}

func assertJSONError(t *testing.T, resp *http.Response, status int, code string) map[string]string {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("error body: %v", err)
	}
	if body["error"] != code {
		t.Errorf("error = %q, want %q", body["error"], code)
	}
	return body
}

// conflictingStore reports the first Create as a taken key, a fault the
// real stores produce only on a 2^-128 collision.
type conflictingStore struct {
	sessionstore.Store
	conflicts atomic.Int32
}

func (c *conflictingStore) Create(ctx context.Context, s *sessionstore.Session) error {
	if c.conflicts.Add(1) == 1 {
		return fmt.Errorf("test: %w", sessionstore.ErrConflict)
	}
	return c.Store.Create(ctx, s)
}

func TestLoginRetriesOnATakenKey(t *testing.T) {
	store := &conflictingStore{Store: memory.New(memory.Options{})}
	st := mustStartStack(t, stackOptions{store: store})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/bff/user after a retried create: %d", resp.StatusCode)
	}
	if n := store.conflicts.Load(); n != 2 {
		t.Errorf("%d creates, want 2", n)
	}
}
