package bff_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff/devstack"
)

func (st *stack) postLogoutToken(t *testing.T, token string) (*http.Response, string) {
	t.Helper()
	resp, err := http.PostForm(st.bff.URL+"/bff/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (st *stack) idpSID(t *testing.T, b *browser) string {
	t.Helper()
	sess, err := st.store.GetByHandle(t.Context(), userSID(t, b))
	if err != nil || sess.IdPSID == "" {
		t.Fatalf("session has no IdP sid: %v", err)
	}
	return sess.IdPSID
}

func (st *stack) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok, err := st.op.SignLogoutToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBackchannelLogoutBySID(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	laptop, phone := st.newBrowser(t), st.newBrowser(t)
	laptop.mustLogin(t, "alice")
	phone.mustLogin(t, "alice")
	events := laptop.openStream(t, "/bff/session/events", nil)

	claims := st.op.LogoutTokenClaims(testClientID, "user-alice", st.idpSID(t, laptop))
	resp, body := st.postLogoutToken(t, st.sign(t, claims))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("back-channel logout: %d %q %s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
	events.waitLine(t, `data: {"cause":"backchannel"}`, time.Second)
	assertUnauthenticated(t, laptop.api(t, "/bff/user"), "session_ended")
	if resp := phone.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Errorf("the other session ended too: %d", resp.StatusCode)
	}

	// The same token again is a replay.
	resp, _ = st.postLogoutToken(t, st.sign(t, claims))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed jti: %d, want 400", resp.StatusCode)
	}
	// A new valid token for a session that no longer exists is still 200.
	fresh := st.op.LogoutTokenClaims(testClientID, "user-alice", claims["sid"].(string))
	if resp, _ := st.postLogoutToken(t, st.sign(t, fresh)); resp.StatusCode != http.StatusOK {
		t.Errorf("logout of an already ended session: %d, want 200", resp.StatusCode)
	}
}

func TestBackchannelLogoutBySubject(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	laptop, phone, bob := st.newBrowser(t), st.newBrowser(t), st.newBrowser(t)
	laptop.mustLogin(t, "alice")
	phone.mustLogin(t, "alice")
	bob.mustLogin(t, "bob")

	resp, body := st.postLogoutToken(t, st.sign(t, st.op.LogoutTokenClaims(testClientID, "user-alice", "")))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ended":2`) {
		t.Fatalf("back-channel logout by sub: %d %s", resp.StatusCode, body)
	}
	assertUnauthenticated(t, laptop.api(t, "/bff/user"), "session_ended")
	assertUnauthenticated(t, phone.api(t, "/bff/user"), "session_ended")
	if resp := bob.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's session ended: %d", resp.StatusCode)
	}
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 0 {
		t.Errorf("alice's refresh tokens not revoked: %d", n)
	}
}

func TestBackchannelLogoutRejectsBadTokens(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	sid := st.idpSID(t, b)
	valid := func() map[string]any { return st.op.LogoutTokenClaims(testClientID, "user-alice", sid) }

	other, err := devstack.StartOP(context.Background(), devstack.OPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	cases := map[string]string{
		"not a JWT":           "not-a-jwt",
		"empty":               "",
		"other audience":      st.sign(t, with(valid(), "aud", "another-client")),
		"other issuer":        st.sign(t, with(valid(), "iss", "https://evil.example")),
		"nonce":               st.sign(t, with(valid(), "nonce", "n")),
		"events null":         st.sign(t, with(valid(), "events", map[string]any{"http://schemas.openid.net/event/backchannel-logout": nil})),
		"events missing":      st.sign(t, with(valid(), "events", nil)),
		"event not an object": st.sign(t, with(valid(), "events", map[string]any{"http://schemas.openid.net/event/backchannel-logout": "yes"})),
		"no iat":              st.sign(t, with(valid(), "iat", nil)),
		"iat in future":       st.sign(t, with(valid(), "iat", time.Now().Add(time.Hour).Unix())),
		"expired":             st.sign(t, with(valid(), "exp", time.Now().Add(-time.Minute).Unix())),
		"no jti":              st.sign(t, with(valid(), "jti", nil)),
		"no sub or sid":       st.sign(t, with(with(valid(), "sub", nil), "sid", nil)),
		"unknown key":         mustSign(t, other, valid()),
	}
	for name, token := range cases {
		resp, body := st.postLogoutToken(t, token)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_logout_token") {
			t.Errorf("%s: %d %s, want 400", name, resp.StatusCode, body)
		}
	}
	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a rejected token ended the session: %d", resp.StatusCode)
	}

	// A sid of alice's with bob's sub matches nothing.
	resp, body := st.postLogoutToken(t, st.sign(t, with(valid(), "sub", "user-bob")))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ended":0`) {
		t.Errorf("mismatched sub and sid: %d %s", resp.StatusCode, body)
	}
	// An oversized body is refused without reading it all.
	big := strings.Repeat("a", 1<<20)
	if resp, _ := st.postLogoutToken(t, big); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("oversized token: %d", resp.StatusCode)
	}
	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Fatalf("session ended: %d", resp.StatusCode)
	}
}

// with returns claims with key set to v, or removed when v is nil.
func with(claims map[string]any, key string, v any) map[string]any {
	if v == nil {
		delete(claims, key)
	} else {
		claims[key] = v
	}
	return claims
}

func mustSign(t *testing.T, op *devstack.OP, claims map[string]any) string {
	t.Helper()
	tok, err := op.SignLogoutToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBackchannelLogoutIsRateLimited(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	limited := 0
	for range 400 {
		resp, _ := st.postLogoutToken(t, "flood")
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
		} else if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("flood: %d", resp.StatusCode)
		}
	}
	if limited == 0 {
		t.Error("400 logout requests in a burst were all processed")
	}
}
