package devstack

import (
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"
)

func TestEndSession(t *testing.T) {
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	a1 := rp.login("alice", "alice-pass")
	a2 := rp.login("alice", "alice-pass")
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = rp.provider.Claims(&meta)
	idHint, _ := a1.token.Extra("id_token").(string)

	endSession := func(postLogout string) *http.Response {
		u := meta.EndSession + "?" + url.Values{
			"id_token_hint": {idHint}, "post_logout_redirect_uri": {postLogout},
			"client_id": {testClientID}, "state": {"st4te"},
		}.Encode()
		resp, err := browser(t).Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	if resp := endSession("http://evil.example/"); resp.StatusCode == http.StatusFound {
		t.Fatalf("unregistered post_logout_redirect_uri redirected to %s", resp.Header.Get("Location"))
	}
	resp := endSession(testPostLogout)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != testPostLogout+"?state=st4te" {
		t.Fatalf("end_session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// That login ended; the other browser's did not.
	if o.RefreshTokenActive(a1.token.RefreshToken) || !o.RefreshTokenActive(a2.token.RefreshToken) {
		t.Error("end_session must end exactly the login named by the id_token_hint")
	}
}

func TestSignLogoutToken(t *testing.T) {
	o := startTestOP(t, OPConfig{})
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	r := rp.login("alice", "alice-pass")
	sid := r.claims["sid"].(string)

	raw, err := o.SignLogoutToken(o.LogoutTokenClaims(testClientID, aliceSub, sid))
	if err != nil {
		t.Fatal(err)
	}
	lt, err := rp.idv.VerifyLogout(t.Context(), raw)
	if err != nil {
		t.Fatalf("VerifyLogout: %v", err)
	}
	if lt.Subject != aliceSub || lt.SessionID != sid || lt.Issuer != o.Issuer() || lt.TokenID == "" {
		t.Errorf("logout token = %+v", lt)
	}

	// Invalid variants.
	noEvents := o.LogoutTokenClaims(testClientID, aliceSub, sid)
	delete(noEvents, "events")
	withNonce := o.LogoutTokenClaims(testClientID, aliceSub, sid)
	withNonce["nonce"] = "n"
	otherAud := o.LogoutTokenClaims("someone-else", aliceSub, sid)
	for name, c := range map[string]map[string]any{"no events": noEvents, "nonce": withNonce, "audience": otherAud} {
		raw, err := o.SignLogoutToken(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rp.idv.VerifyLogout(t.Context(), raw); err == nil {
			t.Errorf("%s: invalid logout token verified", name)
		}
	}

	// Another OP's key does not verify here: instances share nothing.
	other := startTestOP(t, OPConfig{})
	foreign := o.LogoutTokenClaims(testClientID, aliceSub, sid) // claims name o as issuer
	raw, _ = other.SignLogoutToken(foreign)
	if _, err := rp.idv.VerifyLogout(t.Context(), raw); err == nil {
		t.Error("token signed by another OP verified")
	}
}
