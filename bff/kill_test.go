package bff_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff"
)

// stream is an open event stream whose lines are collected until it ends.
type stream struct {
	lines chan string
	ended chan time.Time
}

func (b *browser) openStream(t *testing.T, path string, header http.Header) *stream {
	t.Helper()
	resp, _ := b.send(t, path, header)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("open %s: status %d", path, resp.StatusCode)
	}
	s := &stream{lines: make(chan string, 1000), ended: make(chan time.Time, 1)}
	go func() {
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				s.lines <- strings.TrimSpace(line)
			}
			if err != nil {
				s.ended <- time.Now()
				resp.Body.Close()
				return
			}
		}
	}()
	return s
}

// send GETs path with a context that ends with the test, and returns the
// response and a function that closes it early.
func (b *browser) send(t *testing.T, path string, header http.Header) (*http.Response, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.st.bff.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return resp, func() { cancel(); resp.Body.Close() }
}

// waitLine waits for a line with the prefix.
func (s *stream) waitLine(t *testing.T, prefix string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l := <-s.lines:
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-deadline:
			t.Fatalf("no line %q within %v", prefix, within)
		}
	}
}

// waitEnd returns how long after since the stream ended.
func (s *stream) waitEnd(t *testing.T, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	select {
	case at := <-s.ended:
		return at.Sub(since)
	case <-time.After(within):
		t.Fatalf("stream still open after %v", within)
		return 0
	}
}

func (st *stack) adminDo(t *testing.T, method, path, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, st.admin.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestAdminKillUserEndsEverySessionAndStream(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	laptop, phone, bob := st.newBrowser(t), st.newBrowser(t), st.newBrowser(t)
	laptop.mustLogin(t, "alice")
	phone.mustLogin(t, "alice")
	bob.mustLogin(t, "bob")
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 2 {
		t.Fatalf("alice has %d refresh tokens at the OP, want 2", n)
	}

	apiStream := laptop.openStream(t, "/api/events", csrf())
	apiStream.waitLine(t, "data:", 2*time.Second)
	events := phone.openStream(t, "/bff/session/events", nil)
	events.waitLine(t, ": session events", 2*time.Second)

	killedAt := time.Now()
	resp, body := st.adminDo(t, http.MethodDelete, "/admin/users/user-alice/sessions", testAdminToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ended":2`) {
		t.Fatalf("kill-user: %d %s", resp.StatusCode, body)
	}

	if d := apiStream.waitEnd(t, killedAt, 2*time.Second); d > time.Second {
		t.Errorf("proxied stream closed %v after the kill, want within 1s", d)
	}
	events.waitLine(t, "event: session-ended", time.Second)
	events.waitLine(t, `data: {"cause":"admin"}`, time.Second)
	if d := events.waitEnd(t, killedAt, 2*time.Second); d > time.Second {
		t.Errorf("session events stream closed %v after the kill", d)
	}

	assertUnauthenticated(t, laptop.api(t, "/bff/user"), "session_ended")
	assertUnauthenticated(t, phone.api(t, "/api/whoami"), "session_ended")
	if resp := bob.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's session was touched: %d", resp.StatusCode)
	}
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 0 {
		t.Errorf("alice still has %d refresh tokens at the OP", n)
	}
	if got := strings.Count(st.logs.String(), "event=admin_kill sub=user-alice"); got != 2 {
		t.Errorf("%d audit lines for the kill, want 2:\n%s", got, st.logs.String())
	}
}

func TestAdminKillOneSession(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	laptop, phone := st.newBrowser(t), st.newBrowser(t)
	laptop.mustLogin(t, "alice")
	phone.mustLogin(t, "alice")
	handle := userSID(t, laptop)

	resp, body := st.adminDo(t, http.MethodDelete, "/admin/sessions/"+handle, testAdminToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ended":1`) {
		t.Fatalf("kill: %d %s", resp.StatusCode, body)
	}
	assertUnauthenticated(t, laptop.api(t, "/bff/user"), "session_ended")
	if resp := phone.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Errorf("the other session stopped working: %d", resp.StatusCode)
	}
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 1 {
		t.Errorf("alice has %d refresh tokens at the OP, want 1", n)
	}
	for _, path := range []string{"/admin/sessions/" + handle, "/admin/sessions/unknown-handle"} {
		if resp, _ := st.adminDo(t, http.MethodDelete, path, testAdminToken); resp.StatusCode != http.StatusNotFound {
			t.Errorf("DELETE %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestAdminEmptySelectorsKillNothing(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/admin/users//sessions"},
		{http.MethodDelete, "/admin/users/%20/sessions"},
		{http.MethodDelete, "/admin/sessions/"},
		{http.MethodGet, "/admin/sessions?sub="},
	} {
		resp, body := st.adminDo(t, c.method, c.path, testAdminToken)
		if resp.StatusCode == http.StatusOK {
			t.Errorf("%s %s: 200 %s", c.method, c.path, body)
		}
	}
	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Fatalf("session ended by an empty selector: %d", resp.StatusCode)
	}
}

func TestAdminAuthAndListing(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	loginResp := b.login(t, "alice", "alice-pass", "/")
	cookie := findSetCookie(loginResp, "bff-session")

	for _, token := range []string{"", "wrong-token-wrong-token", testAdminToken + "x"} {
		resp, _ := st.adminDo(t, http.MethodGet, "/admin/sessions", token)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", token, resp.StatusCode)
		}
	}
	resp, body := st.adminDo(t, http.MethodGet, "/admin/sessions?sub=user-alice", testAdminToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var list struct {
		Sessions []map[string]any `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Sessions) != 1 {
		t.Fatalf("list: %v %s", err, body)
	}
	s := list.Sessions[0]
	if s["sub"] != "user-alice" || s["handle"] != userSID(t, b) || s["idpSid"] == "" || s["clientIp"] != "127.0.0.1" {
		t.Errorf("listed session: %v", s)
	}
	if strings.Contains(body, cookie.Value) {
		t.Error("listing contains the cookie value")
	}
	for _, tok := range sessionTokens(t, st, "user-alice") {
		if strings.Contains(body, tok) {
			t.Error("listing contains a token")
		}
	}
	if resp, body := st.adminDo(t, http.MethodGet, "/admin/sessions", testAdminToken); resp.StatusCode != http.StatusOK || !strings.Contains(body, "user-alice") {
		t.Errorf("list all: %d %s", resp.StatusCode, body)
	}

	// Guessing is slowed down: after ten failures a wrong token waits; the
	// right one never does.
	for range 10 {
		st.adminDo(t, http.MethodGet, "/admin/sessions", "guess-guess-guess-guess")
	}
	if resp, _ := st.adminDo(t, http.MethodGet, "/metrics", "guess-guess-guess-guess"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after repeated failures: %d, want 429", resp.StatusCode)
	}
	if resp, body := st.adminDo(t, http.MethodGet, "/metrics", testAdminToken); resp.StatusCode != http.StatusOK {
		t.Errorf("metrics with the right token after repeated failures: %d %.80s", resp.StatusCode, body)
	}
	if resp, _ := st.adminDo(t, http.MethodGet, "/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	if resp, _ := st.adminDo(t, http.MethodGet, "/readyz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("readyz: %d", resp.StatusCode)
	}
}

func TestSessionEventsWarnBeforeTheAbsoluteTimeout(t *testing.T) {
	st := mustStartStack(t, stackOptions{configure: func(c *bff.Config) {
		c.AbsoluteTimeout = 4 * time.Second
		c.IdleTimeout = 4 * time.Second
		c.TouchInterval = time.Second
		c.ExpiringNotice = 3500 * time.Millisecond
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	events := b.openStream(t, "/bff/session/events", nil)
	events.waitLine(t, "event: session-expiring", 2*time.Second)
	events.waitLine(t, `data: {"expiresIn":`, time.Second)

	// Refused cross-site, and without a session it is the 401 contract.
	resp := b.get(t, "/bff/session/events", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	assertJSONError(t, resp, http.StatusForbidden, "csrf_failed")
	resp = b.get(t, "/bff/session/events", http.Header{"Origin": {"https://evil.example"}})
	assertJSONError(t, resp, http.StatusForbidden, "csrf_failed")
	assertUnauthenticated(t, st.newBrowser(t).get(t, "/bff/session/events", nil), "login_required")
}

func TestMetricsCountRequestsByClass(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.api(t, "/bff/user") // 401
	b.get(t, "/", nil)    // 200
	resp, body := st.adminDo(t, http.MethodGet, "/metrics", testAdminToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{`bff_http_requests_total{class="2xx"} 1`, `bff_http_requests_total{class="4xx"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
