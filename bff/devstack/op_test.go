package devstack

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestStartIsFastAndIssuerExact(t *testing.T) {
	start := time.Now()
	o := startTestOP(t, OPConfig{})
	took := time.Since(start)
	t.Logf("StartOP took %v", took)
	if took > 3*time.Second {
		t.Errorf("StartOP took %v", took)
	}
	if !strings.HasPrefix(o.Issuer(), "http://127.0.0.1:") || strings.HasSuffix(o.Issuer(), "/") {
		t.Errorf("Issuer = %q", o.Issuer())
	}
	p, err := oidc.NewProvider(t.Context(), o.Issuer()) // fails unless discovery states the same issuer
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Revocation    string   `json:"revocation_endpoint"`
		EndSession    string   `json:"end_session_endpoint"`
		Introspection string   `json:"introspection_endpoint"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
		Challenge     []string `json:"code_challenge_methods_supported"`
		Grants        []string `json:"grant_types_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.Revocation == "" || meta.EndSession == "" || meta.Introspection == "" {
		t.Errorf("discovery lacks endpoints: %+v", meta)
	}
	for _, m := range []string{"client_secret_basic", "client_secret_post"} {
		if !slices.Contains(meta.AuthMethods, m) {
			t.Errorf("auth methods %v lack %s", meta.AuthMethods, m)
		}
	}
	if !slices.Contains(meta.Challenge, "S256") {
		t.Errorf("code challenge methods %v lack S256", meta.Challenge)
	}
	if !slices.Contains(meta.Grants, "client_credentials") {
		t.Errorf("grants %v lack client_credentials", meta.Grants)
	}
	for _, g := range []string{"urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:device_code"} {
		if slices.Contains(meta.Grants, g) {
			t.Errorf("grant %s should not be offered", g)
		}
	}
}

func TestCodeFlowRefreshRotationAndRevocation(t *testing.T) {
	o := startTestOP(t, OPConfig{AccessTokenLifetime: 2 * time.Second})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	ctx := t.Context()

	r := rp.login("alice", "alice-pass")
	if r.idToken.Subject != aliceSub {
		t.Errorf("sub = %q", r.idToken.Subject)
	}
	sid, _ := r.claims["sid"].(string)
	if sid == "" {
		t.Fatalf("ID token has no sid: %v", r.claims)
	}
	for k, want := range map[string]string{"name": "Alice Anderson", "email": "alice@example.com", "preferred_username": "alice"} {
		if r.claims[k] != want {
			t.Errorf("ID token %s = %v, want %q", k, r.claims[k], want)
		}
	}
	if r.token.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}
	if d := time.Until(r.token.Expiry); d <= 0 || d > 3*time.Second {
		t.Errorf("access token expires in %v, want about 2s", d)
	}
	if o.TokenRequests() != 1 || o.RefreshGrants() != 0 {
		t.Errorf("counters after login: token=%d refresh=%d", o.TokenRequests(), o.RefreshGrants())
	}

	// The access token is a JWT for this client.
	at, err := rp.provider.Verifier(&oidc.Config{ClientID: testClientID}).Verify(ctx, r.token.AccessToken)
	if err != nil {
		t.Fatalf("access token is not a verifiable JWT: %v", err)
	}
	var atClaims map[string]any
	_ = at.Claims(&atClaims)
	if at.Subject != aliceSub || atClaims["sid"] != sid || !slices.Contains(at.Audience, testClientID) {
		t.Errorf("access token claims = %v", atClaims)
	}
	if o.ActiveRefreshTokens(aliceSub) != 1 || !o.RefreshTokenActive(r.token.RefreshToken) {
		t.Fatal("refresh token not active after login")
	}

	// Refresh rotates the refresh token and keeps the sid.
	tok2, err := rp.refresh(r.token.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if o.RefreshGrants() != 1 {
		t.Errorf("RefreshGrants = %d, want 1", o.RefreshGrants())
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == r.token.RefreshToken {
		t.Fatal("refresh token was not rotated")
	}
	raw2, _ := tok2.Extra("id_token").(string)
	idt2, err := rp.idv.Verify(ctx, raw2)
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	var c2 map[string]any
	_ = idt2.Claims(&c2)
	if c2["sid"] != sid {
		t.Errorf("sid after refresh = %v, want %s", c2["sid"], sid)
	}
	if o.RefreshTokenActive(r.token.RefreshToken) || !o.RefreshTokenActive(tok2.RefreshToken) || o.ActiveRefreshTokens(aliceSub) != 1 {
		t.Error("rotation did not retire the old refresh token")
	}

	// The old refresh token is refused.
	_, err = rp.refresh(r.token.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if o.RefreshGrants() != 2 {
		t.Errorf("RefreshGrants = %d, want 2", o.RefreshGrants())
	}

	// RFC 7009 revocation of the current refresh token.
	var meta struct {
		Revocation string `json:"revocation_endpoint"`
	}
	_ = rp.provider.Claims(&meta)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, meta.Revocation,
		strings.NewReader(url.Values{"token": {tok2.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation status = %d", resp.StatusCode)
	}
	if o.RefreshTokenActive(tok2.RefreshToken) || o.ActiveRefreshTokens(aliceSub) != 0 {
		t.Error("refresh token still active after revocation")
	}
	_, err = rp.refresh(tok2.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
}

func TestClientSecretPostAndWrongSecret(t *testing.T) {
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInParams)
	r := rp.login("bob", "bob-pass")
	if r.idToken.Subject != bobSub {
		t.Errorf("sub = %q", r.idToken.Subject)
	}
	if _, err := rp.refresh(r.token.RefreshToken); err != nil {
		t.Fatalf("refresh with client_secret_post: %v", err)
	}
	bad := *rp
	bad.oauth.ClientSecret = "wrong"
	_, err := bad.refresh(r.token.RefreshToken)
	wantOAuthError(t, err, "invalid_client")
}

func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	rp.oauth.Scopes = []string{"openid", "profile"}
	r := rp.login("alice", "alice-pass")
	if r.token.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
	if r.claims["sid"] == nil || r.claims["email"] != nil {
		t.Errorf("claims = %v (want sid, no email)", r.claims)
	}
}

func TestWrongPassword(t *testing.T) {
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	authURL := rp.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	_, err := o.Login(t.Context(), browser(t), authURL, "alice", "nope")
	var le *LoginError
	if !errors.As(err, &le) || !strings.Contains(le.Message, "Wrong username or password") {
		t.Fatalf("err = %v, want a LoginError about the password", err)
	}

	// The page itself shows the error to a human.
	resp, err := http.PostForm(o.Issuer()+"/login", url.Values{"authRequestID": {"unknown"}, "username": {"alice"}, "password": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown auth request: status %d", resp.StatusCode)
	}

	// An unregistered redirect_uri never reaches the login form.
	bad := rp.oauth
	bad.RedirectURL = "http://evil.example/cb"
	_, err = o.Login(t.Context(), browser(t), bad.AuthCodeURL("s"), "alice", "alice-pass")
	if !errors.As(err, &le) {
		t.Fatalf("unregistered redirect_uri: err = %v", err)
	}
}

func TestIntrospectionUserinfoAndRevokeSubject(t *testing.T) {
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	ctx := t.Context()
	a1 := rp.login("alice", "alice-pass")
	a2 := rp.login("alice", "alice-pass") // a second browser
	b := rp.login("bob", "bob-pass")
	if a1.claims["sid"] == a2.claims["sid"] {
		t.Error("two logins share a sid")
	}
	if o.ActiveRefreshTokens(aliceSub) != 2 || o.ActiveRefreshTokens(bobSub) != 1 {
		t.Fatalf("active: alice=%d bob=%d", o.ActiveRefreshTokens(aliceSub), o.ActiveRefreshTokens(bobSub))
	}

	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(a1.token))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != aliceSub || ui.Email != "alice@example.com" {
		t.Errorf("userinfo = %+v", ui)
	}

	introspect := func(token string) bool {
		var meta struct {
			Introspection string `json:"introspection_endpoint"`
		}
		_ = rp.provider.Claims(&meta)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, meta.Introspection, strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(testClientID, testSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Active bool `json:"active"`
		}
		if err := jsonDecode(resp, &out); err != nil {
			t.Fatal(err)
		}
		return out.Active
	}
	if !introspect(a1.token.AccessToken) {
		t.Error("access token not active")
	}

	o.RevokeSubject(aliceSub)
	if o.ActiveRefreshTokens(aliceSub) != 0 || o.ActiveRefreshTokens(bobSub) != 1 {
		t.Fatalf("after RevokeSubject: alice=%d bob=%d", o.ActiveRefreshTokens(aliceSub), o.ActiveRefreshTokens(bobSub))
	}
	_, err = rp.refresh(a2.token.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if introspect(a1.token.AccessToken) {
		t.Error("access token still active at introspection after RevokeSubject")
	}
	if _, err := rp.refresh(b.token.RefreshToken); err != nil {
		t.Errorf("bob's refresh: %v", err)
	}
}

func TestTokenEndpointDown(t *testing.T) {
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	r := rp.login("alice", "alice-pass")
	before := o.TokenRequests()

	o.SetTokenEndpointDown(true)
	_, err := rp.refresh(r.token.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refresh while down: %v", err)
	}
	if o.TokenRequests() != before+1 || o.RefreshGrants() != 1 {
		t.Errorf("counters: token=%d refresh=%d", o.TokenRequests(), o.RefreshGrants())
	}
	if !o.RefreshTokenActive(r.token.RefreshToken) {
		t.Error("an outage must not consume the refresh token")
	}

	o.SetTokenEndpointDown(false)
	if _, err := rp.refresh(r.token.RefreshToken); err != nil {
		t.Fatalf("refresh after outage: %v", err)
	}
}

func TestConcurrentRefreshOneWins(t *testing.T) {
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	r := rp.login("alice", "alice-pass")
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := rp.refresh(r.token.RefreshToken)
			errs <- err
		}()
	}
	ok := 0
	for range n {
		if err := <-errs; err == nil {
			ok++
		} else {
			wantOAuthError(t, err, "invalid_grant")
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent refreshes with one token succeeded, want 1", ok, n)
	}
	if o.ActiveRefreshTokens(aliceSub) != 1 {
		t.Errorf("active = %d", o.ActiveRefreshTokens(aliceSub))
	}
}

func TestLoginRejectsNonBrowserClientRedirects(t *testing.T) {
	// A client that would follow redirects itself still works: Login uses a
	// copy with its own redirect policy.
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := o.Login(t.Context(), c, rp.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "bob", "bob-pass")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), testRedirect+"?") {
		t.Fatalf("Login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c.CheckRedirect != nil {
		t.Error("Login changed the caller's client")
	}
}

func TestCloseStopsListening(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	o, err := StartOP(ctx, OPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(o.Issuer() + "/.well-known/openid-configuration"); err != nil {
		t.Fatal(err)
	}
	cancel() // ctx ends the OP
	deadline := time.Now().Add(2 * time.Second)
	for {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		_, err := c.Get(o.Issuer() + "/.well-known/openid-configuration")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("OP still serving after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
