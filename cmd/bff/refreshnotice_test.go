package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// delayRefreshes holds every refresh grant for delay before the OP sees it.
func delayRefreshes(delay time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") &&
				r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
				time.Sleep(delay)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestClusterRefreshWaitersAreNotified: in a refresh storm over two
// instances, the requests of the instance that did not get the lock are
// released by the refresher's notice, not by polling: all of them finish
// within a fraction of the 2-second re-check after the one (slow) token
// call, and there is exactly one.
func TestClusterRefreshWaitersAreNotified(t *testing.T) {
	t.Parallel()
	redisURL := sharedRedisURL(t)
	const delay = 300 * time.Millisecond
	st := newProcStack(t, procStackOptions{accessTokenLifetime: 2 * time.Second, wrapOP: delayRefreshes(delay)})
	a := st.startBFF(t, "A", redisURL)
	b := st.startBFF(t, "B", redisURL)
	br := st.newLBBrowser()
	defer br.close()
	br.login(t, a, "alice", "alice-pass")
	for _, p := range []*bffProc{a, b} { // warm connections to both
		if r := br.call(p, "/api/whoami", 5*time.Second); r.status != http.StatusOK {
			t.Fatalf("/api/whoami via %s: %v", p.name, r)
		}
	}
	time.Sleep(2300 * time.Millisecond) // expired, and idle: no background refresh

	const n = 20
	results, _ := br.burst(a, b, "/api/whoami", n)
	var slowest time.Duration
	for i, r := range results {
		if r.status != http.StatusOK {
			t.Errorf("call %d: %v", i, r)
		}
		slowest = max(slowest, r.took)
	}
	grants := st.op.RefreshGrants()
	t.Logf("%d calls over A and B: slowest %v, %d refresh grants (token call delayed %v)", n, slowest.Round(time.Millisecond), grants, delay)
	if grants != 1 {
		t.Errorf("%d refresh grants at the OP, want exactly 1", grants)
	}
	// Released by the notice: one token call plus a re-read. Polling with
	// the 2 s re-check would take at least 2 s.
	if bound := delay + 900*time.Millisecond; slowest > bound {
		t.Errorf("slowest call took %v, want under %v: waiters were not released by the refresh notice", slowest, bound)
	}
}
