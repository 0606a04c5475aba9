package bff_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// loginCookies returns the names of the login-state cookies the browser
// would send to the callback.
func (b *browser) loginCookies(t *testing.T) []string {
	t.Helper()
	u, _ := url.Parse(b.st.bff.URL + "/bff/callback")
	var names []string
	for _, c := range b.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "bff-login-") {
			names = append(names, c.Name)
		}
	}
	return names
}

// startLogin runs /bff/login and returns the state it sent to the IdP.
func (b *browser) startLogin(t *testing.T, returnTo string) string {
	t.Helper()
	resp := b.get(t, "/bff/login?returnTo="+returnTo, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/bff/login?returnTo=%.40s…: %d, want 302", returnTo, resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc.Query().Get("state")
}

// Each sign-in start adds a cookie sent with every request; a hostile page
// that navigates to /bff/login over and over must not grow them until every
// request of the browser fails with 431.
func TestLoginKeepsAtMostFivePendingStates(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	var states []string
	for range 20 {
		states = append(states, b.startLogin(t, "/"+strings.Repeat("x", 900)))
	}
	names := b.loginCookies(t)
	if len(names) > 5 {
		t.Fatalf("20 unfinished sign-ins left %d login cookies, want at most 5", len(names))
	}
	// The newest five are the ones kept: starting a sixth drops the oldest.
	for _, s := range states[15:] {
		if !slices.Contains(names, "bff-login-"+s[:16]) {
			t.Errorf("the login state of a recent sign-in was dropped; kept %v", names)
		}
	}
	b.mustLogin(t, "alice")
	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Errorf("user after sign-in: %d", resp.StatusCode)
	}
}

// A returnTo that grows when encoded into the login state must not make the
// sign-in fail: it is refused (replaced by "/"), never a 500.
func TestLoginLongEscapedReturnTo(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	for _, returnTo := range []string{
		"/" + strings.Repeat("%3C", 1000),
		"/" + strings.Repeat("%253C", 1000),
		"/" + strings.Repeat("%22", 1000),
		"/" + strings.Repeat("%C3%A9", 700),
	} {
		b := st.newBrowser(t)
		b.startLogin(t, returnTo)
		resp := b.login(t, "alice", "alice-pass", "")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("callback: %d", resp.StatusCode)
		}
	}
	b := st.newBrowser(t)
	resp := b.login(t, "alice", "alice-pass", "/"+strings.Repeat("<", 1000))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Errorf("callback after a long returnTo: %d to %q, want 302 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
}
