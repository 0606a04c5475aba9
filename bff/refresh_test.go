package bff_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

func tombstone() sessionstore.Tombstone {
	return sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute}
}

// TestRefreshStormMakesOneRefresh: once the access token expires, 50
// concurrent calls of one session cause exactly one refresh grant at the
// OP (counted by the OP), and all succeed.
func TestRefreshStormMakesOneRefresh(t *testing.T) {
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first call: %d", resp.StatusCode)
	}
	if n := st.op.RefreshGrants(); n != 0 {
		t.Fatalf("refreshes before expiry: %d", n)
	}
	time.Sleep(2100 * time.Millisecond)

	const calls = 50
	var wg sync.WaitGroup
	statuses := make([]int, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, st.bff.URL+"/api/whoami", nil)
			req.Header.Set("X-Csrf", "1")
			resp, err := b.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("call %d: %d", i, s)
		}
	}
	if n := st.op.RefreshGrants(); n != 1 {
		t.Errorf("OP saw %d refresh grants, want exactly 1", n)
	}
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 1 {
		t.Errorf("OP has %d live refresh tokens, want 1 (the rotated one)", n)
	}
}

// TestRefreshRefusedEndsSession: the IdP revoked the grant; the next call
// that needs a refresh gets 401 session_expired and the session is gone.
func TestRefreshRefusedEndsSession(t *testing.T) {
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	st.op.RevokeSubject("user-alice")
	time.Sleep(2100 * time.Millisecond)

	assertUnauthenticated(t, b.api(t, "/api/whoami"), "session_expired")
	if list, err := st.store.ListBySubject(t.Context(), "user-alice"); err != nil || len(list) != 0 {
		t.Errorf("sessions left: %d %v", len(list), err)
	}
	assertUnauthenticated(t, b.api(t, "/bff/user"), "session_expired")
}

// TestTokenEndpointDown: with a still-valid access token the call goes
// through; once it has expired the answer is 503 with Retry-After and the
// session is kept; when the IdP is back the same cookie works.
func TestTokenEndpointDown(t *testing.T) {
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 4 * time.Second})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	st.op.SetTokenEndpointDown(true)

	time.Sleep(2500 * time.Millisecond) // inside the refresh margin (half of 4 s), still valid
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("valid token, IdP down: %d %s", resp.StatusCode, readBody(t, resp))
	}
	time.Sleep(2 * time.Second) // now expired
	resp := b.api(t, "/api/whoami")
	assertJSONError(t, resp, http.StatusServiceUnavailable, "idp_unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	st.op.SetTokenEndpointDown(false)
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("IdP back: %d %s", resp.StatusCode, readBody(t, resp))
	}
}

// TestShortTokensAreNotRefreshedOnEveryRequest: the margin is at most half
// the token's lifetime.
func TestShortTokensAreNotRefreshedOnEveryRequest(t *testing.T) {
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 4 * time.Second})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	for range 10 {
		if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %d", resp.StatusCode)
		}
	}
	if n := st.op.RefreshGrants(); n != 0 {
		t.Errorf("%d refreshes for a fresh 4 s token with a 30 s skew", n)
	}
}
