package bff_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
)

// requestFrom sends GET path from the given client address straight to the
// public handler, so that many addresses can be simulated.
func (st *stack) requestFrom(addr, path string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = addr + ":40000"
	rec := httptest.NewRecorder()
	st.server.Handler().ServeHTTP(rec, req)
	return rec.Code
}

// Sign-in starts and callbacks are budgeted per client address (300 a
// minute by default): far above what people behind one address do, and a
// bound on what one address can make the BFF do (a cookie sealed per start,
// a store write and a call to the IdP per callback).
func TestLoginAndCallbackAreRateLimitedPerAddress(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	const limit = 300
	for _, c := range []struct {
		path string
		want int
	}{
		{"/bff/login?returnTo=/", http.StatusFound},
		{"/bff/callback?state=unknown-state-0123456789&code=x", http.StatusBadRequest},
	} {
		for i := range limit {
			if code := st.requestFrom("192.0.2.7", c.path); code != c.want {
				t.Fatalf("%s, request %d: %d, want %d", c.path, i+1, code, c.want)
			}
		}
		if code := st.requestFrom("192.0.2.7", c.path); code != http.StatusTooManyRequests {
			t.Errorf("%s, request %d from one address: %d, want 429", c.path, limit+1, code)
		}
		if code := st.requestFrom("192.0.2.8", c.path); code != c.want {
			t.Errorf("%s from another address: %d, want %d", c.path, code, c.want)
		}
	}
	// A real browser at the limited address is told to wait, not given a 500.
	if code := st.requestFrom("192.0.2.7", "/bff/login"); code != http.StatusTooManyRequests {
		t.Errorf("limited login: %d", code)
	}
}

func TestLoginRateLimitSetting(t *testing.T) {
	st := mustStartStack(t, stackOptions{configure: func(c *bff.Config) { c.LoginRateLimit = 2 }})
	for range 2 {
		st.requestFrom("192.0.2.9", "/bff/login")
	}
	if code := st.requestFrom("192.0.2.9", "/bff/login"); code != http.StatusTooManyRequests {
		t.Errorf("third login with BFF_LOGIN_RATE_LIMIT=2: %d, want 429", code)
	}
	off := mustStartStack(t, stackOptions{configure: func(c *bff.Config) { c.LoginRateLimit = 0 }})
	for i := range 400 {
		if code := off.requestFrom("192.0.2.9", "/bff/login"); code != http.StatusFound {
			t.Fatalf("login %d with BFF_LOGIN_RATE_LIMIT=0: %d, want 302", i+1, code)
		}
	}
	bad := bff.DefaultConfig()
	bad.LoginRateLimit = -1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "BFF_LOGIN_RATE_LIMIT") {
		t.Errorf("negative BFF_LOGIN_RATE_LIMIT: %v", err)
	}
}
