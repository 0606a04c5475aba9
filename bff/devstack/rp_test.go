package devstack

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	testClientID    = "bff"
	testSecret      = "bff-secret"
	testRedirect    = "http://127.0.0.1:9/bff/callback"
	testPostLogout  = "http://127.0.0.1:9/"
	aliceSub        = "user-alice"
	bobSub          = "user-bob"
	testScopeString = "openid profile email offline_access"
)

func testClient() Client {
	return Client{ID: testClientID, Secret: testSecret, RedirectURIs: []string{testRedirect}, PostLogoutRedirectURIs: []string{testPostLogout}}
}

func startTestOP(t *testing.T, cfg OPConfig) *OP {
	t.Helper()
	if cfg.Clients == nil {
		cfg.Clients = []Client{testClient()}
	}
	o, err := StartOP(t.Context(), cfg)
	if err != nil {
		t.Fatalf("StartOP: %v", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// browser is a cookie-keeping client that does not follow redirects, as the
// BFF's tests use it.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

func randString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// testRP is a relying party built like the BFF: go-oidc for discovery and
// verification, x/oauth2 for the code exchange and refresh.
type testRP struct {
	t        *testing.T
	op       *OP
	provider *oidc.Provider
	oauth    oauth2.Config
	idv      *oidc.IDTokenVerifier
}

func newRP(t *testing.T, o *OP, style oauth2.AuthStyle) *testRP {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), o.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = style
	return &testRP{
		t: t, op: o, provider: p,
		oauth: oauth2.Config{
			ClientID: testClientID, ClientSecret: testSecret, Endpoint: ep,
			RedirectURL: testRedirect, Scopes: strings.Fields(testScopeString),
		},
		idv: p.Verifier(&oidc.Config{ClientID: testClientID}),
	}
}

type loginResult struct {
	token   *oauth2.Token
	idToken *oidc.IDToken
	claims  map[string]any
}

// login runs the whole code + PKCE + state + nonce flow through Login.
func (rp *testRP) login(user, pass string) loginResult {
	t := rp.t
	t.Helper()
	ctx := t.Context()
	verifier := oauth2.GenerateVerifier()
	state, nonce := randString(), randString()
	authURL := rp.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	resp, err := rp.op.Login(ctx, browser(t), authURL, user, pass)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("Login status = %d, want 302", resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("redirected to %s, want %s", got, testRedirect)
	}
	q := loc.Query()
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q", q.Get("state"), state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", loc.Redacted())
	}

	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.idv.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return loginResult{token: tok, idToken: idt, claims: claims}
}

func (rp *testRP) refresh(refreshToken string) (*oauth2.Token, error) {
	return rp.oauth.TokenSource(rp.t.Context(), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want *oauth2.RetrieveError %s", err, code)
	}
	if re.ErrorCode != code {
		t.Fatalf("error code = %q (HTTP %d), want %q", re.ErrorCode, re.Response.StatusCode, code)
	}
}
