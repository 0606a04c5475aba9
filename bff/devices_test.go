package bff_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	uaFirefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaSafariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaChromeLinux    = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// userAgentTransport sends every request with one User-Agent, like a real
// browser on one device.
type userAgentTransport struct {
	ua   string
	next http.RoundTripper
}

func (u userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", u.ua)
	return u.next.RoundTrip(req)
}

func (st *stack) newDevice(t *testing.T, user, ua string) *browser {
	t.Helper()
	b := st.newBrowser(t)
	b.Transport = userAgentTransport{ua: ua, next: b.Transport}
	b.mustLogin(t, user)
	return b
}

type deviceList struct {
	Sessions []struct {
		Handle   string    `json:"handle"`
		Created  time.Time `json:"created"`
		LastSeen time.Time `json:"lastSeen"`
		Device   string    `json:"device"`
		Current  bool      `json:"current"`
	} `json:"sessions"`
}

func listDevices(t *testing.T, b *browser) (deviceList, string) {
	t.Helper()
	resp := b.api(t, "/bff/sessions")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /bff/sessions: %d %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var list deviceList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return list, body
}

func TestDevicesListsOnlyTheUsersOwnSessions(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	laptop := st.newDevice(t, "alice", uaFirefoxWindows)
	phone := st.newDevice(t, "alice", uaSafariIPhone)
	bob := st.newDevice(t, "bob", uaChromeLinux)

	list, body := listDevices(t, laptop)
	if len(list.Sessions) != 2 {
		t.Fatalf("alice sees %d sessions, want 2: %s", len(list.Sessions), body)
	}
	first, second := list.Sessions[0], list.Sessions[1]
	if !first.Current || first.Handle != userSID(t, laptop) || first.Device != "Firefox on Windows" {
		t.Errorf("first entry is not this laptop: %+v", first)
	}
	if second.Current || second.Handle != userSID(t, phone) || second.Device != "Safari on iPhone" {
		t.Errorf("second entry is not the phone: %+v", second)
	}
	for _, d := range list.Sessions {
		if time.Since(d.Created) > time.Minute || d.LastSeen.Before(d.Created) {
			t.Errorf("times of %s: created %v, last seen %v", d.Handle, d.Created, d.LastSeen)
		}
	}
	if strings.Contains(body, userSID(t, bob)) {
		t.Error("alice's list shows bob's session")
	}
	secrets := []string{laptop.sessionCookie(t), phone.sessionCookie(t)}
	sessions, err := st.store.ListBySubject(t.Context(), "user-alice")
	if err != nil || len(sessions) != 2 {
		t.Fatalf("alice's sessions in the store: %v %d", err, len(sessions))
	}
	for _, sess := range sessions {
		secrets = append(secrets, tokensOf(t, st, sess)...)
	}
	for _, secret := range secrets {
		if strings.Contains(body, secret) {
			t.Error("the list contains a token or cookie value")
		}
	}
	for _, field := range []string{"127.0.0.1", "sub", "idpSid"} {
		if strings.Contains(body, field) {
			t.Errorf("the list shows %q; the user's view holds handle, times, device only", field)
		}
	}

	// The phone sees itself as current.
	if list, _ := listDevices(t, phone); len(list.Sessions) != 2 || !list.Sessions[0].Current || list.Sessions[0].Handle != userSID(t, phone) {
		t.Errorf("phone's view: %+v", list.Sessions)
	}

	assertJSONError(t, laptop.get(t, "/bff/sessions", nil), http.StatusForbidden, "csrf_failed")
	assertUnauthenticated(t, st.newBrowser(t).api(t, "/bff/sessions"), "login_required")
}

func TestDevicesSignOutOneDevice(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	laptop := st.newDevice(t, "alice", uaFirefoxWindows)
	phone := st.newDevice(t, "alice", uaSafariIPhone)
	bob := st.newDevice(t, "bob", uaChromeLinux)
	phoneHandle := userSID(t, phone)
	events := phone.openStream(t, "/bff/session/events", nil)
	events.waitLine(t, ": session events", 2*time.Second)

	// Another user's handle, an unknown one, and a request without the CSRF
	// header end nothing.
	resp := laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions/"+userSID(t, bob), csrf())
	assertJSONError(t, resp, http.StatusNotFound, "not_found")
	resp = laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions/no-such-handle", csrf())
	assertJSONError(t, resp, http.StatusNotFound, "not_found")
	resp = laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions/"+phoneHandle, nil)
	assertJSONError(t, resp, http.StatusForbidden, "csrf_failed")
	for _, b := range []*browser{bob, phone} {
		if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
			t.Fatalf("a refused DELETE ended a session: %d", resp.StatusCode)
		}
	}

	endedAt := time.Now()
	resp = laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions/"+phoneHandle, csrf())
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ended":1`) {
		t.Fatalf("DELETE own session: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("ending another device touched this browser's cookie")
	}
	events.waitLine(t, "event: session-ended", time.Second)
	events.waitLine(t, `data: {"cause":"user_revoked"}`, time.Second)
	if d := events.waitEnd(t, endedAt, 2*time.Second); d > time.Second {
		t.Errorf("the phone's event stream closed %v after the sign-out", d)
	}
	assertUnauthenticated(t, phone.api(t, "/bff/user"), "session_ended")
	if resp := laptop.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Errorf("the laptop stopped working: %d", resp.StatusCode)
	}
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 1 {
		t.Errorf("alice has %d refresh tokens at the OP, want 1 (the phone's revoked)", n)
	}
	if !strings.Contains(st.logs.String(), "event=device_signed_out sub=user-alice handle="+phoneHandle+" cause=user_revoked actor=user@"+userSID(t, laptop)) {
		t.Errorf("no audit line for the sign-out:\n%s", st.logs.String())
	}
	// Gone is gone: a second DELETE is 404.
	resp = laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions/"+phoneHandle, csrf())
	assertJSONError(t, resp, http.StatusNotFound, "not_found")

	// Ending the current session from the list signs this browser out.
	resp = laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions/"+userSID(t, laptop), csrf())
	if resp.StatusCode != http.StatusOK || findSetCookie(resp, "bff-session") == nil || findSetCookie(resp, "bff-session").MaxAge >= 0 {
		t.Errorf("DELETE current session: %d, cookie %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if resp := bob.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's session was touched: %d", resp.StatusCode)
	}
}

func TestDevicesSignOutEverywhereElse(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	laptop := st.newDevice(t, "alice", uaFirefoxWindows)
	phone := st.newDevice(t, "alice", uaSafariIPhone)
	tablet := st.newDevice(t, "alice", uaChromeLinux)
	bob := st.newDevice(t, "bob", uaChromeLinux)

	// Without others=true the collection DELETE is refused: never "all".
	resp := laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions", csrf())
	assertJSONError(t, resp, http.StatusBadRequest, "invalid_request")
	resp = laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions?others=true", nil)
	assertJSONError(t, resp, http.StatusForbidden, "csrf_failed")
	if list, _ := listDevices(t, laptop); len(list.Sessions) != 3 {
		t.Fatalf("a refused DELETE ended sessions: %d left", len(list.Sessions))
	}

	resp = laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions?others=true", csrf())
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ended":2`) {
		t.Fatalf("sign out everywhere else: %d %s", resp.StatusCode, body)
	}
	assertUnauthenticated(t, phone.api(t, "/api/whoami"), "session_ended")
	assertUnauthenticated(t, tablet.api(t, "/bff/user"), "session_ended")
	if resp := laptop.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Errorf("this browser stopped working: %d", resp.StatusCode)
	}
	if resp := bob.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's session was touched: %d", resp.StatusCode)
	}
	if list, _ := listDevices(t, laptop); len(list.Sessions) != 1 || !list.Sessions[0].Current {
		t.Errorf("after signing out elsewhere: %+v", list.Sessions)
	}
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 1 {
		t.Errorf("alice has %d refresh tokens at the OP, want 1", n)
	}
	// Nothing else left to end.
	resp = laptop.do(t, http.MethodDelete, st.bff.URL+"/bff/sessions?others=true", csrf())
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ended":0`) {
		t.Errorf("second sign out everywhere else: %d %s", resp.StatusCode, body)
	}
}
