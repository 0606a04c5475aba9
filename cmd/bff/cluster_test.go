package main

// Process-level tests of the cluster guarantees: real `bff serve` processes
// (see process_test.go), an embedded OP and the demo API in the test
// process, the shared Redis (database 5) and dedicated redis-server
// children. crash_test.go does the same for SQLite files. Skipped with -short.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"
)

// TestClusterKillAcrossInstances: a session made on A works on B; killed
// through B's admin API, it is refused by A at once and A's open streams
// (a proxied SSE stream and the session-events stream) are cut within a
// second, the events stream saying session-ended first.
func TestClusterKillAcrossInstances(t *testing.T) {
	t.Parallel()
	redisURL := sharedRedisURL(t)
	st := newProcStack(t, procStackOptions{})
	a := st.startBFF(t, "A", redisURL)
	b := st.startBFF(t, "B", redisURL)

	br := st.newLBBrowser()
	defer br.close()
	br.login(t, a, "alice", "alice-pass")

	user := br.call(b, "/bff/user", 5*time.Second)
	sid, _ := user.body["sid"].(string)
	if user.status != http.StatusOK || user.body["sub"] != "user-alice" || sid == "" {
		t.Fatalf("/bff/user via B: %v", user)
	}
	if r := br.call(b, "/api/whoami", 5*time.Second); r.status != http.StatusOK || r.body["sub"] != "user-alice" {
		t.Fatalf("/api/whoami via B: %v", r)
	}
	if r := br.call(a, "/api/whoami", 5*time.Second); r.status != http.StatusOK {
		t.Fatalf("/api/whoami via A: %v", r)
	}

	apiStream := br.openStream(t, a, "/api/events?interval=100ms", true)
	evStream := br.openStream(t, a, "/bff/session/events", false)
	for _, s := range []*sseStream{apiStream, evStream} {
		select {
		case <-s.first:
		case <-s.done:
			t.Fatalf("stream %s ended before the kill: %v", s.name, s.err)
		case <-time.After(5 * time.Second):
			t.Fatalf("stream %s sent nothing in 5s", s.name)
		}
	}

	killStart := time.Now()
	kill := procAdminDo(t, b, http.MethodDelete, "/admin/sessions/"+url.PathEscape(sid), 10*time.Second)
	if kill.status != http.StatusOK || kill.body["ended"] != float64(1) {
		t.Fatalf("DELETE /admin/sessions/%s via B: %v", sid, kill)
	}
	t.Logf("kill through B's admin API took %v", kill.took.Round(time.Millisecond))

	for _, s := range []*sseStream{apiStream, evStream} {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			events, _ := s.snapshot()
			t.Fatalf("stream %s via A still open 5s after the kill (events %q)", s.name, events)
		}
		s.mu.Lock()
		latency, err := s.doneAt.Sub(killStart), s.err
		s.mu.Unlock()
		t.Logf("stream %s via A closed %v after the kill request was sent (read error: %v)", s.name, latency.Round(time.Millisecond), err)
		if latency > time.Second {
			t.Errorf("stream %s via A closed %v after the kill; want within 1s", s.name, latency)
		}
	}
	events, lines := evStream.snapshot()
	if len(events) == 0 || events[0] != "session-ended" {
		t.Errorf("session events stream: events %q, want session-ended first; lines %q", events, lines)
	} else if !hasLine(lines, `data: {"cause":"admin"}`) {
		t.Errorf("session-ended without cause admin: %q", lines)
	}

	expect401(t, "/bff/user via A after the kill", br.call(a, "/bff/user", 5*time.Second), "session_ended")
	expect401(t, "/api/whoami via A after the kill", br.call(a, "/api/whoami", 5*time.Second), "session_ended")
	expect401(t, "/api/whoami via B after the kill", br.call(b, "/api/whoami", 5*time.Second), "session_ended")
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 0 {
		t.Errorf("%d refresh tokens of user-alice still active at the OP after the kill", n)
	}
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// TestClusterRefreshStorm: with 2-second access tokens, 50 concurrent API
// calls split over two instances after the token expired make exactly one
// refresh at the OP, and all succeed.
func TestClusterRefreshStorm(t *testing.T) {
	t.Parallel()
	redisURL := sharedRedisURL(t)
	st := newProcStack(t, procStackOptions{accessTokenLifetime: 2 * time.Second})
	a := st.startBFF(t, "A", redisURL)
	b := st.startBFF(t, "B", redisURL)
	br := st.newLBBrowser()
	defer br.close()

	for round := 1; round <= 2; round++ {
		if round == 1 {
			br.login(t, a, "alice", "alice-pass")
		}
		before := st.op.RefreshGrants()
		time.Sleep(2200 * time.Millisecond) // the access token has expired
		const n = 50
		results, took := br.burst(a, b, "/api/whoami", n)
		failed := 0
		for i, r := range results {
			if r.status != http.StatusOK || r.body["sub"] != "user-alice" {
				failed++
				if failed <= 5 {
					t.Errorf("round %d, call %d: %v", round, i, r)
				}
			}
		}
		grants := st.op.RefreshGrants() - before
		t.Logf("round %d: %d calls over A and B in %v: %d failed, %d refresh grants at the OP", round, n, took.Round(time.Millisecond), failed, grants)
		if grants != 1 {
			t.Errorf("round %d: %d refresh grants at the OP, want exactly 1", round, grants)
		}
	}
	if got := st.op.RefreshGrants(); got != 2 {
		t.Errorf("%d refresh grants in all, want 2", got)
	}
}

// TestRedisOutage: while the store does not answer, API calls are 503 (not
// 401: an outage is not a logout) within a bounded time, /readyz fails
// within its own 2-second budget, and the same cookie works again once the
// store answers. The dedicated redis-server has no persistence, so the
// outage is a freeze (SIGSTOP, then CLIENT PAUSE) rather than a restart; a
// kill comes last.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	rs := startRedisChild(t)
	st := newProcStack(t, procStackOptions{})
	a := st.startBFF(t, "A", "redis://"+rs.addr+"/0")
	br := st.newLBBrowser()
	defer br.close()
	br.login(t, a, "alice", "alice-pass")
	if r := br.call(a, "/api/whoami", 5*time.Second); r.status != http.StatusOK {
		t.Fatalf("/api/whoami: %v", r)
	}

	const (
		// apiBound is how long an API call may wait for a store that does
		// not answer before it gets its 503.
		apiBound = 10 * time.Second
		// readyBound is /readyz's own 2 s store budget plus slack.
		readyBound = 3 * time.Second
	)
	notLogout := func(t *testing.T, what string, r callResult) bool {
		t.Helper()
		t.Logf("%s: %v", what, r)
		switch {
		case r.err != nil:
			t.Errorf("%s: no answer: %v", what, r)
		case r.status == http.StatusUnauthorized:
			t.Errorf("%s: 401 during a store outage (an outage must not look like a logout): %v", what, r)
		default:
			if r.took > apiBound {
				t.Errorf("%s: answered after %v; want within %v", what, r.took.Round(time.Millisecond), apiBound)
			}
			return true
		}
		return false
	}
	expect503 := func(t *testing.T, what string, r callResult) {
		t.Helper()
		if notLogout(t, what, r) && (r.status != http.StatusServiceUnavailable || r.body["error"] != "store_unavailable" ||
			!strings.HasPrefix(r.header.Get("Content-Type"), "application/json")) {
			t.Errorf("%s: %v, want 503 JSON store_unavailable", what, r)
		}
	}
	expectNotReady := func(t *testing.T, what string) {
		t.Helper()
		r := procAdminDo(t, a, http.MethodGet, "/readyz", 60*time.Second)
		t.Logf("%s: %v", what, r)
		if r.err != nil || r.status == http.StatusOK {
			t.Errorf("%s: %v, want a failure", what, r)
		} else if r.took > readyBound {
			t.Errorf("%s: answered after %v; /readyz gives the store 2s, want within %v", what, r.took.Round(time.Millisecond), readyBound)
		}
	}
	expectBack := func(t *testing.T, what string) {
		t.Helper()
		took, err := retryFor(10*time.Second, func() error {
			if r := br.call(a, "/api/whoami", 30*time.Second); r.status != http.StatusOK {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: the cookie does not work again: %v", what, err)
		} else {
			t.Logf("%s: /api/whoami 200 again after %v", what, took.Round(time.Millisecond))
		}
	}

	// 1. redis-server frozen (SIGSTOP): the kernel still accepts
	// connections and buffers commands; nothing is answered.
	t.Run("SIGSTOP", func(t *testing.T) {
		rs.signal(t, syscall.SIGSTOP)
		resumed := false
		defer func() {
			if !resumed {
				rs.signal(t, syscall.SIGCONT)
			}
		}()
		expect503(t, "/api/whoami, redis stopped", br.call(a, "/api/whoami", 60*time.Second))
		expectNotReady(t, "/readyz, redis stopped")
		// A burst, as a browser with several tabs or many users would
		// send: every call must still get its 503 in bounded time.
		const burst = 30
		results := make([]callResult, burst)
		var wg sync.WaitGroup
		for i := range burst {
			path := "/api/whoami"
			if i%2 == 1 {
				path = "/bff/user"
			}
			wg.Go(func() { results[i] = br.call(a, path, 60*time.Second) })
		}
		wg.Wait()
		var slowest callResult
		bad := 0
		for _, r := range results {
			if r.took > slowest.took {
				slowest = r
			}
			if r.err != nil || r.status != http.StatusServiceUnavailable || r.took > apiBound {
				bad++
			}
		}
		tooks := make([]time.Duration, 0, burst)
		for _, r := range results {
			tooks = append(tooks, r.took.Round(time.Millisecond))
		}
		slices.Sort(tooks)
		msg := fmt.Sprintf("burst of %d calls, redis stopped: %d not a 503 within %v; fastest %v, median %v, slowest: %v",
			burst, bad, apiBound, tooks[0], tooks[burst/2], slowest)
		if bad > 0 {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
		rs.signal(t, syscall.SIGCONT)
		resumed = true
		expectBack(t, "after SIGCONT")
	})

	// 2. CLIENT PAUSE 5000 ALL: the server holds every client's commands
	// for 5 s, then answers them. Waiting for it (200) or giving up (503)
	// are both fine; a 401 or no bounded answer is not.
	t.Run("CLIENT PAUSE", func(t *testing.T) {
		ctl := goredis.NewClient(&goredis.Options{Addr: rs.addr, MaxRetries: -1})
		defer ctl.Close()
		if err := ctl.Do(context.Background(), "CLIENT", "PAUSE", 5000, "ALL").Err(); err != nil {
			t.Fatalf("CLIENT PAUSE: %v", err)
		}
		r := br.call(a, "/api/whoami", 60*time.Second)
		if notLogout(t, "/api/whoami, redis paused for 5s", r) && r.status != http.StatusOK && r.status != http.StatusServiceUnavailable {
			t.Errorf("/api/whoami, redis paused: %v, want 200 (waited) or 503", r)
		}
		_ = ctl.Do(context.Background(), "CLIENT", "UNPAUSE").Err()
		expectBack(t, "after the pause")
	})

	// 3. redis-server gone: connections are refused.
	t.Run("killed", func(t *testing.T) {
		rs.kill()
		expect503(t, "/api/whoami, redis killed", br.call(a, "/api/whoami", 60*time.Second))
		expectNotReady(t, "/readyz, redis killed")
	})
}
