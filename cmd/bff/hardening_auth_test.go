package main

// Acceptance of the hardening of admin authentication, back-channel logout
// and sign-in against a running `bff serve`.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func adminCall(t *testing.T, p *bffProc, method, path, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.admin+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, drainBody(resp)
}

func TestServeAdminTokenWorksAfterFailuresFromTheSameAddress(t *testing.T) {
	s := newProcStack(t, procStackOptions{})
	p := s.startBFF(t, "a", "memory:")
	for i := range 12 {
		code, _ := adminCall(t, p, http.MethodGet, "/admin/sessions", "wrong-token-0123456789abcdef")
		if want := http.StatusUnauthorized; (i < 10 && code != want) || (i >= 10 && code != http.StatusTooManyRequests) {
			t.Errorf("wrong token %d: %d", i+1, code)
		}
	}
	if code, body := adminCall(t, p, http.MethodGet, "/admin/sessions", procAdminToken); code != http.StatusOK {
		t.Errorf("right admin token after 12 failures from the same address: %d %s", code, body)
	}
}

func TestServeBackchannelLogoutAfterAFlood(t *testing.T) {
	s := newProcStack(t, procStackOptions{})
	p := s.startBFF(t, "a", "memory:")
	b := s.newLBBrowser()
	defer b.close()
	b.login(t, p, "alice", "alice-pass")

	code, body := adminCall(t, p, http.MethodGet, "/admin/sessions?sub=user-alice", procAdminToken)
	var list struct {
		Sessions []struct {
			IdPSID string `json:"idpSid"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil || len(list.Sessions) != 1 || list.Sessions[0].IdPSID == "" {
		t.Fatalf("alice's session: %d %s", code, body)
	}

	post := func(token string) int {
		resp, err := http.PostForm("http://"+p.listen+"/bff/backchannel-logout", url.Values{"logout_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		drainBody(resp)
		return resp.StatusCode
	}
	limited := 0
	for i := range 300 {
		bogus := []string{"garbage", "a.b.c", strings.Repeat("x", 20000)}[i%3]
		switch code := post(bogus); code {
		case http.StatusTooManyRequests:
			limited++
		case http.StatusBadRequest:
		default:
			t.Fatalf("bogus post %d: %d", i+1, code)
		}
	}
	token, err := s.op.SignLogoutToken(s.op.LogoutTokenClaims(procClientID, "user-alice", list.Sessions[0].IdPSID))
	if err != nil {
		t.Fatal(err)
	}
	if code := post(token); code != http.StatusOK {
		t.Fatalf("the IdP's logout token after 300 bogus posts: %d", code)
	}
	expect401(t, "alice after the back-channel logout", b.call(p, "/bff/user", 5*time.Second), "session_ended")
	t.Logf("300 bogus posts: %d answered 429, the rest 400", limited)
}

func TestServeUnfinishedSignInsKeepFiveLoginCookies(t *testing.T) {
	s := newProcStack(t, procStackOptions{})
	p := s.startBFF(t, "a", "memory:")
	b := s.newLBBrowser()
	defer b.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 20 {
		resp, err := b.get(ctx, p, "/bff/login?returnTo=/page-"+strings.Repeat("x", 500), nil)
		if err != nil {
			t.Fatal(err)
		}
		drainBody(resp)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-in start %d: %d", i+1, resp.StatusCode)
		}
	}
	u, _ := url.Parse(s.publicURL + "/bff/callback")
	n := 0
	for _, c := range b.jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "bff-login-") {
			n++
		}
	}
	if n > 5 {
		t.Errorf("20 unfinished sign-ins left %d login cookies, want at most 5", n)
	}
	b.login(t, p, "alice", "alice-pass")
	if r := b.call(p, "/bff/user", 5*time.Second); r.status != http.StatusOK || r.body["sub"] != "user-alice" {
		t.Errorf("user after the next sign-in: %v", r)
	}
	t.Logf("20 unfinished sign-ins: %d login cookies kept", n)
}
