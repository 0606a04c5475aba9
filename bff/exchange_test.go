package bff_test

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/bff/devstack"
	"github.com/bffproxy/bff/sessionstore/memory"
)

const tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"

func TestExchangeRouteGetsATokenForItsAudience(t *testing.T) {
	var api *httptest.Server
	st := mustStartStack(t, stackOptions{tokenExchange: true, configure: func(cfg *bff.Config) {
		withAudienceRoutes(&api, "/partner/;token=exchange;audience=partner-api")(cfg)
	}, beforeConfigure: func(st *stack) { api = audienceAPI(t, st.op.Issuer()) }})

	anon := st.newBrowser(t)
	assertUnauthenticated(t, anon.api(t, "/partner/x"), "login_required")

	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	for range 3 {
		a := b.audience(t, "/partner/x")
		if !slices.Equal(a.Aud, []string{"partner-api"}) || a.Sub != "user-alice" {
			t.Errorf("exchanged token: aud %v sub %q, want [partner-api] and the user", a.Aud, a.Sub)
		}
	}
	if n := st.op.GrantRequests(tokenExchangeGrant); n != 1 {
		t.Errorf("token exchanges for three calls: %d, want 1 (the token is kept)", n)
	}
	// The session's own token is untouched and still for the BFF.
	if who := decodeJSON(t, b.api(t, "/api/whoami")); who["sub"] != "user-alice" {
		t.Errorf("default route: %v", who)
	}
}

func TestExchangeRouteNeedsAnIdPThatOffersTokenExchange(t *testing.T) {
	op, err := devstack.StartOP(t.Context(), devstack.OPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	cfg := bff.DefaultConfig()
	cfg.Issuer, cfg.ClientID, cfg.ClientSecret = op.Issuer(), testClientID, testClientSecret
	cfg.PublicURL, cfg.AdminListen = "http://127.0.0.1:1", "off"
	key := make([]byte, 32)
	rand.Read(key)
	cfg.Keys = [][]byte{key}
	cfg.Routes, err = bff.ParseRoutes("/partner/=http://127.0.0.1:2;token=exchange;audience=partner-api")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	provider, err := bff.Discover(t.Context(), logger, &cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New(memory.Options{})
	t.Cleanup(func() { store.Close() })
	_, err = bff.New(t.Context(), bff.Deps{Logger: logger, Config: cfg, Store: store, Provider: provider})
	if err == nil || !strings.Contains(err.Error(), "BFF_ROUTES") || !strings.Contains(err.Error(), tokenExchangeGrant) {
		t.Fatalf("New with token=exchange at an IdP without it: %v, want an error naming BFF_ROUTES and the grant", err)
	}
	if resp, err := http.Get(op.Issuer() + "/.well-known/openid-configuration"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), tokenExchangeGrant) {
			t.Error("the OP offers token exchange after all; this test shows nothing")
		}
	}
}
