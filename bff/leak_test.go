package bff_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/sqlite"
	"github.com/bffproxy/bff/sessionstore/tokenpack"
)

// TestNoTokenReachesTheBrowserOrTheStore walks the whole flow — login,
// user, an API call, an event stream, a refresh, logout — recording every
// response the browser receives, then looks for the session's tokens in all
// of them, in the log, and in the raw bytes of the sqlite database.
//
// The one place a token legitimately passes through the browser is the
// id_token_hint of the end-session redirect, sent after the session and its
// tokens are destroyed (an ID token is not an API credential): that
// parameter, and only it, is exempt.
//
// Tracing and the access log are on: neither the log nor any exported span
// may hold a token, the authorization code, the cookie value, the client
// secret or the admin token.
func TestNoTokenReachesTheBrowserOrTheStore(t *testing.T) {
	col := startCollector(t)
	tracing := mustStartTracing(t, col)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "sessions.db")
	store, err := sqlite.Open(t.Context(), dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	st := mustStartStack(t, stackOptions{store: store, accessTokenLifetime: 2 * time.Second, tracing: tracing,
		configure: func(c *bff.Config) { c.LogRequests = true }})

	b := st.newBrowser(t)
	loginResp := b.login(t, "alice", "alice-pass", "/")
	sessionCookie := findSetCookie(loginResp, "bff-session")
	if sessionCookie == nil {
		t.Fatal("no session cookie")
	}
	var tokens []string
	collect := func() { tokens = append(tokens, sessionTokens(t, st, "user-alice")...) }
	collect()

	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Fatalf("user: %d", resp.StatusCode)
	}
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %d %s", resp.StatusCode, readBody(t, resp))
	}
	resp := b.api(t, "/api/events")
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line == "" {
		t.Fatalf("events: %v", err)
	}
	resp.Body.Close()

	time.Sleep(2 * time.Second) // the access token expires: the next call refreshes it
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami after expiry: %d", resp.StatusCode)
	}
	collect()
	if tokens[0] == tokens[3] || tokens[1] == tokens[4] {
		t.Fatal("no refresh happened; the test would not cover rotated tokens")
	}

	// Raw store bytes, while the session is live.
	raw := readFiles(t, dbPath, dbPath+"-wal")
	for i, tok := range tokens {
		if strings.Contains(raw, tok) {
			t.Errorf("token %d is in the database in clear", i)
		}
	}

	// The admin side: a list, a refused call and the metrics.
	if resp, _ := st.adminDo(t, http.MethodGet, "/admin/sessions?sub=user-alice", testAdminToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("admin list: %d", resp.StatusCode)
	}
	if resp, _ := st.adminDo(t, http.MethodGet, "/admin/sessions", testAdminToken+"-wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin with a wrong token: %d", resp.StatusCode)
	}
	st.scrape(t)

	sid := userSID(t, b)
	resp = b.get(t, "/bff/logout?sid="+url.QueryEscape(sid), nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.responses) < 8 {
		t.Fatalf("only %d responses recorded", len(b.responses))
	}
	for _, r := range b.responses {
		headers := r.headers.Clone()
		if loc, err := url.Parse(headers.Get("Location")); err == nil && strings.HasSuffix(r.url, "sid="+url.QueryEscape(sid)) {
			q := loc.Query()
			q.Del("id_token_hint")
			loc.RawQuery = q.Encode()
			headers.Set("Location", loc.String())
		}
		var all strings.Builder
		for k, vs := range headers {
			all.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
		}
		all.Write(r.body)
		for i, tok := range tokens {
			if strings.Contains(all.String(), tok) {
				t.Errorf("token %d reached the browser in the response to %s", i, r.url)
			}
		}
	}
	logs := st.logs.String()
	if strings.Contains(raw, sessionCookie.Value) {
		t.Error("the session cookie value is in the database")
	}
	if err := tracing.Provider.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := col.rawText()
	if len(col.all()) < 20 || !strings.Contains(logs, "msg=request ") {
		t.Fatalf("only %d spans exported, or no access log: the check would prove little", len(col.all()))
	}
	secrets := map[string]string{
		"session cookie value": sessionCookie.Value,
		"authorization code":   authCode(t, b),
		"client secret":        testClientSecret,
		"admin token":          testAdminToken,
	}
	for i, tok := range tokens {
		secrets[fmt.Sprintf("token %d", i)] = tok
	}
	for what, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s is in the log", what)
		}
		if strings.Contains(spans, secret) {
			t.Errorf("the %s is in an exported span", what)
		}
	}
}

// authCode is the authorization code the browser carried to the callback.
func authCode(t *testing.T, b *browser) string {
	t.Helper()
	for _, r := range b.responses {
		if u, err := url.Parse(r.url); err == nil && u.Path == "/bff/callback" && u.Query().Get("code") != "" {
			return u.Query().Get("code")
		}
	}
	t.Fatal("no callback with a code recorded")
	return ""
}

func readFiles(t *testing.T, paths ...string) string {
	t.Helper()
	var sb strings.Builder
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		sb.Write(b)
	}
	if sb.Len() == 0 {
		t.Fatal("no database bytes to inspect")
	}
	return sb.String()
}

// sessionTokens unseals the tokens of the subject's only session: access,
// refresh and ID token.
func sessionTokens(t *testing.T, st *stack, subject string) []string {
	t.Helper()
	list, err := st.store.ListBySubject(t.Context(), subject)
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions of %s: %v %d", subject, err, len(list))
	}
	return tokensOf(t, st, list[0])
}

// tokensOf unseals a session's access, refresh and ID token.
func tokensOf(t *testing.T, st *stack, sess *sessionstore.Session) []string {
	t.Helper()
	sealer, err := sessionstore.NewSealer(st.cfg.Keys)
	if err != nil {
		t.Fatal(err)
	}
	at, err := sealer.Open(sess.Key, "access_token", sess.AccessToken)
	if err != nil {
		t.Fatalf("open access token: %v", err)
	}
	access, err := tokenpack.Unpack(at)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := sealer.Open(sess.Key, "secrets", sess.Secrets)
	if err != nil {
		t.Fatalf("open secrets: %v", err)
	}
	sec, err := tokenpack.DecodeSecrets(plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(access) < 20 || len(sec.RefreshToken) < 10 || len(sec.IDToken) < 20 {
		t.Fatalf("session holds no real tokens: %d %d %d", len(access), len(sec.RefreshToken), len(sec.IDToken))
	}
	return []string{access, sec.RefreshToken, sec.IDToken}
}
