package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff/devstack"
	"github.com/bffproxy/bff/internal/syncbuf"
)

// TestServeLoginUserLogout runs `serve` through run(), as main does, against
// the embedded OP over real HTTP: login → /bff/user → logout → the OP's
// end-session endpoint, then the old cookie is refused and the OP no longer
// accepts the refresh token.
func TestServeLoginUserLogout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	public, admin := freeAddr(t), freeAddr(t)
	publicURL := "http://" + public
	op, err := devstack.StartOP(ctx, devstack.OPConfig{Clients: []devstack.Client{{
		ID: "serve-test", Secret: "serve-test-secret",
		RedirectURIs:           []string{publicURL + "/bff/callback"},
		PostLogoutRedirectURIs: []string{publicURL + "/"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()

	env := map[string]string{
		"BFF_ISSUER":        op.Issuer(),
		"BFF_CLIENT_ID":     "serve-test",
		"BFF_CLIENT_SECRET": "serve-test-secret",
		"BFF_PUBLIC_URL":    publicURL,
		"BFF_LISTEN":        public,
		"BFF_ADMIN_LISTEN":  admin,
		"BFF_ADMIN_TOKEN":   "serve-test-admin-token",
		"BFF_KEYS":          newKey(),
		"BFF_STORE":         "memory:",
	}
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &stderr, &stderr) }()
	waitReady(t, ctx, http.DefaultClient, "http://"+admin+"/readyz", done, &stderr)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := mustGet(t, c, publicURL+"/bff/login?returnTo=/x", nil)
	opResp, err := op.Login(ctx, c, resp.Header.Get("Location"), "alice", "alice-pass")
	if err != nil {
		t.Fatal(err)
	}
	resp = mustGet(t, c, opResp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/x" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := jar.Cookies(mustParse(t, publicURL))

	resp = mustGet(t, c, publicURL+"/bff/user", http.Header{"X-Csrf": {"1"}})
	var user struct{ Sub, LogoutURL string }
	json.NewDecoder(resp.Body).Decode(&user)
	if resp.StatusCode != http.StatusOK || user.Sub != "user-alice" {
		t.Fatalf("/bff/user: %d %+v", resp.StatusCode, user)
	}
	resp = mustGet(t, c, publicURL+user.LogoutURL, nil)
	end, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(end.String(), op.Issuer()) ||
		end.Query().Get("id_token_hint") == "" || end.Query().Get("post_logout_redirect_uri") != publicURL+"/" {
		t.Fatalf("logout: %d %s", resp.StatusCode, end)
	}

	replay := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, publicURL+"/bff/user", nil)
	req.Header.Set("X-Csrf", "1")
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err = replay.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "session_ended") {
		t.Errorf("old cookie after logout: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if n := op.ActiveRefreshTokens("user-alice"); n != 0 {
		t.Errorf("OP still accepts %d refresh tokens of alice", n)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
}

func TestServeRejectsBadConfigurationNamingTheSetting(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{}, []string{"BFF_ISSUER: required", "BFF_CLIENT_ID: required", "BFF_CLIENT_SECRET: required", "BFF_PUBLIC_URL: required", "BFF_KEYS: required", "BFF_ADMIN_TOKEN"}},
		{map[string]string{"BFF_KEYS": "short", "BFF_REFRESH_SKEW": "soon", "BFF_ROUTES": "/api/"}, []string{"BFF_KEYS", "BFF_REFRESH_SKEW", "BFF_ROUTES"}},
		{map[string]string{"BFF_PUBLIC_URL": "http://app.example.com", "BFF_ISSUER": "http://idp.example.com"}, []string{"BFF_PUBLIC_URL: must use https", "BFF_ISSUER: must use https"}},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		err := run(context.Background(), []string{"serve"}, func(k string) string { return tc.env[k] }, &out, &out)
		if err == nil {
			t.Fatalf("env %v: started", tc.env)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("env %v: error does not mention %q:\n%v", tc.env, w, err)
			}
		}
	}
}

func TestServeHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, &out, &out)
	for _, s := range settings {
		if !strings.Contains(out.String(), s.env) || !strings.Contains(out.String(), "-"+s.flag) {
			t.Errorf("--help does not list %s (--%s)", s.env, s.flag)
		}
	}
}

func mustGet(t *testing.T, c *http.Client, u string, h http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestServeWaitsForTheIdP: with the IdP down at start-up, serve is alive
// (/healthz 200) but not ready (/readyz and public routes 503), and becomes
// ready once the IdP answers — no crash, no restart.
func TestServeWaitsForTheIdP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	public, admin, opAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := map[string]string{
		"BFF_ISSUER":        "http://" + opAddr,
		"BFF_CLIENT_ID":     "serve-test",
		"BFF_CLIENT_SECRET": "serve-test-secret",
		"BFF_PUBLIC_URL":    "http://" + public,
		"BFF_LISTEN":        public,
		"BFF_ADMIN_LISTEN":  admin,
		"BFF_ADMIN_TOKEN":   "serve-test-admin-token",
		"BFF_KEYS":          newKey(),
		"BFF_STORE":         "memory:",
	}
	var logs syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &logs, &logs) }()

	status := func(u string) int {
		resp, err := http.Get(u)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for status("http://"+admin+"/healthz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("not alive while the IdP is down:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := status("http://" + admin + "/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the IdP is down: %d", got)
	}
	if got := status("http://" + public + "/bff/login"); got != http.StatusServiceUnavailable {
		t.Errorf("/bff/login while the IdP is down: %d", got)
	}
	time.Sleep(600 * time.Millisecond) // a few retries
	if !strings.Contains(logs.String(), "issuer discovery failed; retrying") {
		t.Errorf("the retries are not reported:\n%s", logs.String())
	}

	op, err := devstack.StartOP(ctx, devstack.OPConfig{Addr: opAddr, Clients: []devstack.Client{{
		ID: "serve-test", Secret: "serve-test-secret", RedirectURIs: []string{"http://" + public + "/bff/callback"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	waitReady(t, ctx, http.DefaultClient, "http://"+admin+"/readyz", done, &logs)
	if got := status("http://" + public + "/bff/user"); got != http.StatusForbidden {
		t.Errorf("/bff/user without CSRF header once ready: %d, want 403", got)
	}
}
