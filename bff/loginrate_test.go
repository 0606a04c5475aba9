package bff_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff"
)

// requestFrom sends GET path from the given client address straight to the
// public handler, so that many addresses can be simulated.
func (st *stack) requestFrom(addr, path string) int {
	return st.responseFrom(addr, path).Code
}

func (st *stack) responseFrom(addr, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = addr + ":40000"
	rec := httptest.NewRecorder()
	st.server.Handler().ServeHTTP(rec, req)
	return rec
}

// Sign-in starts and callbacks are budgeted per client address (300 a
// minute by default, all at once, then 5 a second): far above what people
// behind one address do, and a bound on what one address can make the BFF
// do (a cookie sealed per start, a store write and a call to the IdP per
// callback).
func TestLoginAndCallbackAreRateLimitedPerAddress(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	const limit, perSecond = 300, 5
	for _, c := range []struct {
		path string
		want int
	}{
		{"/bff/login?returnTo=/", http.StatusFound},
		{"/bff/callback?state=unknown-state-0123456789&code=x", http.StatusBadRequest},
	} {
		start := time.Now()
		var limited *httptest.ResponseRecorder
		n := 0
		for limited == nil && n < 2*limit {
			n++
			switch rec := st.responseFrom("192.0.2.7", c.path); rec.Code {
			case c.want:
			case http.StatusTooManyRequests:
				limited = rec
			default:
				t.Fatalf("%s, request %d: %d, want %d or 429", c.path, n, rec.Code, c.want)
			}
		}
		// The whole burst passes; what was regained meanwhile passes too.
		regained := int(time.Since(start).Seconds()*perSecond) + 1
		if limited == nil || n <= limit || n > limit+regained+1 {
			t.Fatalf("%s from one address: first 429 at request %d, want it after %d (+%d regained)", c.path, n, limit, regained)
		}
		if limited.Header().Get("Retry-After") == "" || !strings.Contains(limited.Body.String(), "rate_limited") {
			t.Errorf("429 without Retry-After or rate_limited: %v %s", limited.Header(), limited.Body)
		}
		if code := st.requestFrom("192.0.2.8", c.path); code != c.want {
			t.Errorf("%s from another address: %d, want %d", c.path, code, c.want)
		}
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
