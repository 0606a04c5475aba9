package bff_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Under SameSite=Strict the session cookie does not come with the IdP's
// redirect to the callback (a cross-site navigation), but it does come with
// /bff/login, a same-site navigation. A second sign-in in the same browser
// must end the first session all the same: one browser, one session.
func TestReloginEndsThePreviousSessionWithoutItsCookieAtTheCallback(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	first := userSID(t, b)
	oldCookie := b.sessionCookie(t)

	resp := b.get(t, "/bff/login?returnTo=/", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	opResp, err := st.op.Login(context.Background(), b.Client, resp.Header.Get("Location"), "alice", "alice-pass")
	if err != nil {
		t.Fatal(err)
	}
	callback := opResp.Header.Get("Location")
	if !strings.HasPrefix(callback, st.bff.URL+"/bff/callback") {
		t.Fatalf("OP redirects to %q", callback)
	}
	// The browser sends the Lax login-state cookie, not the Strict session cookie.
	req, _ := http.NewRequest(http.MethodGet, callback, nil)
	u, _ := url.Parse(st.bff.URL)
	for _, c := range b.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "bff-login-") {
			req.AddCookie(c)
		}
	}
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	cb, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cb.Body.Close()
	if cb.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", cb.StatusCode)
	}
	if _, err := st.store.GetByHandle(t.Context(), first); err == nil {
		t.Error("the first session of the browser is still alive after the second sign-in")
	}
	list, err := st.store.ListBySubject(t.Context(), "user-alice")
	if err != nil || len(list) != 1 || list[0].Handle == first {
		t.Errorf("alice's sessions after the second sign-in: %d (%v), want only the new one", len(list), err)
	}
	// The old cookie now learns why its session ended.
	old := st.newBrowser(t)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: "bff-session", Value: oldCookie, Path: "/"}})
	assertUnauthenticated(t, old.api(t, "/bff/user"), "session_ended")
}

// sessionCookie returns the browser's session cookie value.
func (b *browser) sessionCookie(t *testing.T) string {
	t.Helper()
	u, _ := url.Parse(b.st.bff.URL)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "bff-session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}
