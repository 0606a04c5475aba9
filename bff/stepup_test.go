package bff_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff/devstack"
)

// stepUpLogin follows a /bff/login link through the OP's form as user and
// returns the BFF's callback response and the authorize URL it went to.
func (b *browser) stepUpLogin(t *testing.T, login, user string) (*http.Response, *url.URL) {
	t.Helper()
	resp := b.get(t, login, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("%s: status %d, want 302", login, resp.StatusCode)
	}
	authorize, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	opResp, err := b.st.op.Login(context.Background(), b.Client, authorize.String(), user, user+"-pass")
	if err != nil {
		t.Fatalf("OP login: %v", err)
	}
	return b.getURL(t, opResp.Header.Get("Location"), nil), authorize
}

func TestUpstreamStepUpChallengeThenStepUpInTheSameSession(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	before := decodeJSON(t, b.api(t, "/bff/user"))
	if before["acr"] != devstack.ACRPassword {
		t.Errorf("/bff/user acr after sign-in = %v, want %q", before["acr"], devstack.ACRPassword)
	}

	// The API asks for a confirmed sign-in: the SPA gets the BFF's
	// step_up_required, with what to ask for, and never the API's body.
	resp := b.api(t, "/api/confirmed")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
	}
	wantChallenge := `BFF error="step_up_required", acr_values="` + devstack.ACRConfirmed + `", max_age=300`
	if got := resp.Header.Get("WWW-Authenticate"); got != wantChallenge {
		t.Errorf("WWW-Authenticate = %q, want %q", got, wantChallenge)
	}
	for _, leak := range []string{"insufficient_user_authentication", "confirm it is you", "error_description"} {
		if strings.Contains(body, leak) {
			t.Errorf("the API's challenge or body reached the browser (%q): %s", leak, body)
		}
	}
	var challenge map[string]any
	if err := json.Unmarshal([]byte(body), &challenge); err != nil {
		t.Fatal(err)
	}
	if challenge["error"] != "step_up_required" || challenge["acr_values"] != devstack.ACRConfirmed || challenge["max_age"] != float64(300) {
		t.Errorf("body = %v", challenge)
	}
	login, _ := challenge["login"].(string)
	wantLogin := "/bff/login?" + url.Values{"acr_values": {devstack.ACRConfirmed}, "max_age": {"300"}, "returnTo": {"/"}}.Encode()
	if login != wantLogin {
		t.Errorf("login = %q, want %q", login, wantLogin)
	}

	// Following it asks the IdP for them; the same user signs in again.
	cb, authorize := b.stepUpLogin(t, login, "alice")
	if q := authorize.Query(); q.Get("acr_values") != devstack.ACRConfirmed || q.Get("max_age") != "300" {
		t.Errorf("authorize request acr_values=%q max_age=%q", q.Get("acr_values"), q.Get("max_age"))
	}
	if cb.StatusCode != http.StatusFound || cb.Header.Get("Location") != "/" {
		t.Fatalf("callback: %d to %q: %s", cb.StatusCode, cb.Header.Get("Location"), readBody(t, cb))
	}

	// The session is the same one, with the new level; the call succeeds.
	after := decodeJSON(t, b.api(t, "/bff/user"))
	if after["sid"] != before["sid"] {
		t.Errorf("step-up changed the session: sid %v → %v", before["sid"], after["sid"])
	}
	if after["acr"] != devstack.ACRConfirmed {
		t.Errorf("/bff/user acr after step-up = %v, want %q", after["acr"], devstack.ACRConfirmed)
	}
	if at, _ := after["auth_time"].(float64); time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("/bff/user auth_time = %v, want the step-up's", after["auth_time"])
	}
	if resp := b.api(t, "/api/confirmed"); resp.StatusCode != http.StatusOK {
		t.Errorf("retried call: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	// The session refreshes with the step-up's refresh token.
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Errorf("after step-up: /api/whoami %d", resp.StatusCode)
	}
}

func TestStepUpRefusesWrongACRAndStaleAuthTime(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	sid := decodeJSON(t, b.api(t, "/bff/user"))["sid"]

	// The dev OP cannot do this acr and signs in with its default one.
	cb, _ := b.stepUpLogin(t, "/bff/login?acr_values=urn:example:acr:hardware-key", "alice")
	assertJSONError(t, cb, http.StatusBadRequest, "step_up_failed")

	// An OP that reports an old authentication despite max_age.
	st.op.SetAuthTimeShift(time.Hour)
	cb, _ = b.stepUpLogin(t, "/bff/login?max_age=60", "alice")
	assertJSONError(t, cb, http.StatusBadRequest, "step_up_failed")

	// The session is untouched by both, and keeps working.
	user := decodeJSON(t, b.api(t, "/bff/user"))
	if user["sid"] != sid || user["acr"] != devstack.ACRPassword {
		t.Errorf("after refused step-ups: sid %v acr %v, want %v and %q", user["sid"], user["acr"], sid, devstack.ACRPassword)
	}
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Errorf("after refused step-ups: /api/whoami %d", resp.StatusCode)
	}
}

func TestStepUpAsAnotherUserStartsANewSession(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	old := b.sessionCookie(t)

	cb, _ := b.stepUpLogin(t, "/bff/login?acr_values="+url.QueryEscape(devstack.ACRConfirmed), "bob")
	if cb.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", cb.StatusCode)
	}
	user := decodeJSON(t, b.api(t, "/bff/user"))
	if user["sub"] != "user-bob" || user["acr"] != devstack.ACRConfirmed {
		t.Errorf("after bob's step-up sign-in: %v", user)
	}
	if b.sessionCookie(t) == old {
		t.Error("another user's sign-in kept the old cookie")
	}
	u, _ := url.Parse(st.bff.URL)
	other := st.newBrowser(t)
	other.Jar.SetCookies(u, []*http.Cookie{{Name: "bff-session", Value: old, Path: "/"}})
	assertUnauthenticated(t, other.api(t, "/bff/user"), "session_ended")
}

func TestRouteACROptionAsksForStepUpBeforeProxying(t *testing.T) {
	st := mustStartStack(t, stackOptions{configure: withRoutes("/pay/;acr=" + devstack.ACRConfirmed)})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	resp := b.api(t, "/pay/headers")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	if got, want := resp.Header.Get("WWW-Authenticate"), `BFF error="step_up_required", acr_values="`+devstack.ACRConfirmed+`"`; got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	body := decodeJSON(t, resp)
	if _, ok := body["max_age"]; ok || body["acr_values"] != devstack.ACRConfirmed {
		t.Errorf("body = %v", body)
	}
	if body["authorization"] != nil || body["host"] != nil {
		t.Error("the request reached the upstream")
	}
	if cb, _ := b.stepUpLogin(t, body["login"].(string), "alice"); cb.StatusCode != http.StatusFound {
		t.Fatalf("step-up callback: %d", cb.StatusCode)
	}
	if resp := b.api(t, "/pay/headers"); resp.StatusCode != http.StatusOK {
		t.Errorf("after step-up: status %d", resp.StatusCode)
	}
}

func TestLoginPassesPromptAndRefusesBadParameters(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	for _, prompt := range []string{"login", "consent", "select_account", "login consent"} {
		resp := b.get(t, "/bff/login?prompt="+url.QueryEscape(prompt), nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("prompt") != prompt {
			t.Errorf("prompt=%s: %d to %v", prompt, resp.StatusCode, loc)
		}
	}
	for _, q := range []string{"prompt=none+login", "prompt=create", "max_age=-1", "max_age=1e3", "acr_values=%22x%22", "acr_values=a+b+c+d+e+f+g+h+i"} {
		resp := b.get(t, "/bff/login?"+q, http.Header{"Accept": {"application/json"}})
		assertJSONError(t, resp, http.StatusBadRequest, "invalid_request")
	}

	// prompt=none when the IdP has no session: back to the page, marked.
	resp := b.get(t, "/bff/login?prompt=none&returnTo="+url.QueryEscape("/x?tab=2"), nil)
	authorize := resp.Header.Get("Location")
	if q := mustQuery(t, authorize); q.Get("prompt") != "none" {
		t.Fatalf("authorize request lacks prompt=none: %s", authorize)
	}
	opResp := b.getURL(t, authorize, nil)
	callback := opResp.Header.Get("Location")
	if !strings.HasPrefix(callback, st.bff.URL+"/bff/callback?") || mustQuery(t, callback).Get("error") != "login_required" {
		t.Fatalf("OP answered %d to %q", opResp.StatusCode, callback)
	}
	cb := b.getURL(t, callback, nil)
	if cb.StatusCode != http.StatusFound || cb.Header.Get("Location") != "/x?login=required&tab=2" {
		t.Errorf("callback: %d to %q, want 302 to /x?login=required&tab=2", cb.StatusCode, cb.Header.Get("Location"))
	}
	// Without prompt=none, the same refusal is an error page.
	resp = b.get(t, "/bff/login?returnTo=/x", nil)
	state := mustQuery(t, resp.Header.Get("Location")).Get("state")
	cb = b.get(t, "/bff/callback?error=login_required&state="+state, http.Header{"Accept": {"application/json"}})
	assertJSONError(t, cb, http.StatusBadRequest, "idp_error")
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
