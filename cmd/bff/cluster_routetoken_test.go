package main

import (
	"net/http"
	"testing"
	"time"
)

// TestClusterRouteTokenStorm: a scope= route's own token (a down-scoped
// token from the refresh-token grant) is obtained once for a storm of calls
// spread over two instances sharing Redis, and renewed once after it
// expires: the route-token grant runs under the session's cluster-wide
// refresh lock. Every call gets the down-scoped token, and the session's
// own token keeps working (the rotated refresh token was stored).
func TestClusterRouteTokenStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	redisURL := sharedRedisURL(t)
	st := newProcStack(t, procStackOptions{accessTokenLifetime: 2 * time.Second})
	routes := "BFF_ROUTES=/api/=" + st.apiURL + ",/profile/=" + st.apiURL + "/api;strip;scope=profile"
	a := st.startBFF(t, "A", redisURL, routes)
	b := st.startBFF(t, "B", redisURL, routes)
	br := st.newLBBrowser()
	defer br.close()
	br.login(t, a, "alice", "alice-pass")

	for round := 1; round <= 2; round++ {
		if round == 2 {
			time.Sleep(2200 * time.Millisecond) // the route's token has expired
		}
		before := st.op.RefreshGrants()
		const n = 40
		results, took := br.burst(a, b, "/profile/whoami", n)
		failed := 0
		for i, r := range results {
			claims, _ := r.body["claims"].(map[string]any)
			if r.status != http.StatusOK || r.body["sub"] != "user-alice" || claims["scope"] != "profile" {
				failed++
				if failed <= 5 {
					t.Errorf("round %d, call %d: %d %s", round, i, r.status, r.raw)
				}
			}
		}
		grants := st.op.RefreshGrants() - before
		t.Logf("round %d: %d calls over A and B in %v: %d failed, %d refresh grants", round, n, took.Round(time.Millisecond), failed, grants)
		if grants != 1 {
			t.Errorf("round %d: %d refresh grants at the OP for the route's token, want exactly 1", round, grants)
		}
	}
	if r := br.call(b, "/api/whoami", 10*time.Second); r.status != http.StatusOK || r.body["sub"] != "user-alice" {
		t.Errorf("the session's own route after the route-token grants: %d %s", r.status, r.raw)
	}
}
