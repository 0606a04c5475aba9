package bff_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// adminAs sends an admin request from the given client address straight to
// the admin handler, so that many addresses can be simulated.
func (st *stack) adminAs(t *testing.T, addr, token string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/admin/sessions", nil)
	req.RemoteAddr = addr + ":40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	st.server.AdminHandler().ServeHTTP(rec, req)
	return rec.Code
}

// Everyone behind one address (every loopback caller, every pod behind a
// sidecar) shares a failure budget: guessing from that address must not lock
// the real admin out.
func TestAdminRightTokenWorksAfterFailuresFromTheSameAddress(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	for i := range 12 {
		resp, _ := st.adminDo(t, http.MethodGet, "/admin/sessions", "guess-guess-guess-guess")
		if want := http.StatusUnauthorized; i >= 10 {
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("failure %d: %d, want 429", i+1, resp.StatusCode)
			}
		} else if resp.StatusCode != want {
			t.Errorf("failure %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if resp, body := st.adminDo(t, http.MethodGet, "/admin/sessions", testAdminToken); resp.StatusCode != http.StatusOK {
		t.Errorf("right token after 12 failures: %d %s", resp.StatusCode, body)
	}
	if resp, _ := st.adminDo(t, http.MethodGet, "/metrics", testAdminToken); resp.StatusCode != http.StatusOK {
		t.Errorf("metrics with the right token after 12 failures: %d", resp.StatusCode)
	}
	if resp, _ := st.adminDo(t, http.MethodGet, "/admin/sessions", "guess-guess-guess-guess"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a wrong token after the right one: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// A spray of failures from many addresses must not wipe the budget of an
// address that is guessing right now.
func TestAdminFailureBudgetSurvivesAnAddressSpray(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	const guesser = "192.0.2.1"
	for range 10 {
		st.adminAs(t, guesser, "guess-guess-guess-guess")
	}
	if code := st.adminAs(t, guesser, "guess-guess-guess-guess"); code != http.StatusTooManyRequests {
		t.Fatalf("after ten failures: %d, want 429", code)
	}
	// The guesser keeps guessing during the spray. Its budget comes back at
	// one failure per six seconds, no faster: a table that forgot it would
	// give it ten at once.
	start, regained := time.Now(), 0
	for i := range 12000 {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
		if code := st.adminAs(t, addr, "wrong-wrong-wrong-wrong"); code != http.StatusUnauthorized {
			t.Fatalf("first failure of %s: %d, want 401", addr, code)
		}
		if i%500 == 0 || i == 11999 {
			for st.adminAs(t, guesser, "guess-guess-guess-guess") == http.StatusUnauthorized {
				regained++
			}
		}
	}
	if allowed := int(time.Since(start)/(6*time.Second)) + 1; regained > allowed {
		t.Errorf("the guesser got %d more failures during the spray (%v), want at most %d", regained, time.Since(start).Round(time.Millisecond), allowed)
	}
	if code := st.adminAs(t, guesser, testAdminToken); code != http.StatusOK {
		t.Errorf("right token from the guesser's address: %d, want 200", code)
	}
}
