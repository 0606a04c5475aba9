package main

// Process-level tests of the cluster guarantees: real `bff serve` processes
// (see process_test.go), an embedded OP and the demo API in the test
// process, the shared Redis on 127.0.0.1:6379 (database 5), dedicated
// redis-server children, and SQLite files. Skipped with -short.

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
		results := make([]callResult, n)
		var wg sync.WaitGroup
		startGun := make(chan struct{})
		for i := range n {
			p := a
			if i%2 == 1 {
				p = b
			}
			wg.Go(func() {
				<-startGun
				results[i] = br.call(p, "/api/whoami", 30*time.Second)
			})
		}
		start := time.Now()
		close(startGun)
		wg.Wait()
		took := time.Since(start)
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

// TestSQLiteCrash: kill -9 under load does not lose or corrupt sessions:
// after a restart on the same file the old cookies still work and the file
// passes PRAGMA integrity_check.
func TestSQLiteCrash(t *testing.T) {
	t.Parallel()
	// Access tokens outlive the test: a kill between the IdP's answer to a
	// refresh and the write of the rotated token loses that session at an
	// IdP with strict rotation (the old token is spent) — no store can
	// help there, and TestSQLiteCrashDuringRefresh covers the part that a
	// store can. This test is about the database under write load.
	st := newProcStack(t, procStackOptions{accessTokenLifetime: time.Hour})
	dbPath := filepath.Join(st.tmp, "s.db")
	// A short touch interval makes the load write, not only read.
	a := st.startBFF(t, "A", "sqlite:"+dbPath, "BFF_TOUCH_INTERVAL=10ms")

	users := [][2]string{{"alice", "alice-pass"}, {"bob", "bob-pass"}, {"alice", "alice-pass"}}
	var browsers []*lbBrowser
	for _, u := range users {
		br := st.newLBBrowser()
		defer br.close()
		br.login(t, a, u[0], u[1])
		if r := br.call(a, "/bff/user", 5*time.Second); r.status != http.StatusOK {
			t.Fatalf("/bff/user of %s: %v", u[0], r)
		}
		browsers = append(browsers, br)
	}

	// Load: every browser calls /bff/user and /api/whoami in a loop; more
	// logins run beside them, so creates and touches are in flight when the
	// process dies.
	var (
		mu       sync.Mutex
		counts   = map[string]int{}
		firstErr = map[string]string{}
		killed   atomic.Bool
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	count := func(k string, detail any) {
		if killed.Load() {
			k = "after kill: " + k
		}
		mu.Lock()
		defer mu.Unlock()
		counts[k]++
		if _, seen := firstErr[k]; !seen && detail != nil {
			firstErr[k] = fmt.Sprint(detail)
		}
	}
	for i, br := range browsers {
		for _, path := range []string{"/bff/user", "/api/whoami", "/bff/user", "/api/whoami"} {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					r := br.call(a, path, 5*time.Second)
					switch {
					case r.err != nil:
						count("transport error", r)
					case r.status == http.StatusOK:
						count("200", nil)
					default:
						count(fmt.Sprint(r.status), r)
					}
				}
			})
		}
		_ = i
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			br := st.newLBBrowser()
			err := lbTryLogin(br, a, "bob", "bob-pass")
			br.close()
			if err != nil {
				count("login error", err)
			} else {
				count("login", nil)
			}
		}
	})
	time.Sleep(2500 * time.Millisecond)
	killed.Store(true)
	a.kill()
	killedAt := time.Now()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("load before and after kill -9: %v", counts)
	for k, v := range firstErr {
		t.Logf("first %q: %s", k, v)
	}
	for k, v := range counts {
		if !strings.HasPrefix(k, "after kill") && k != "200" && k != "login" {
			t.Errorf("%d × %q under load before the kill (first: %s)", v, k, firstErr[k])
		}
	}
	ok := counts["200"]
	mu.Unlock()
	if ok < 50 {
		t.Errorf("only %d successful calls under load before the kill", ok)
	}

	a.start()
	t.Logf("restarted %v after kill -9", time.Since(killedAt).Round(time.Millisecond))
	for i, br := range browsers {
		if r := br.call(a, "/bff/user", 5*time.Second); r.status != http.StatusOK {
			t.Errorf("session %d (%s) after kill -9 and restart: %v", i, users[i][0], r)
		}
		// A session whose refresh was in flight at the kill may wait for
		// the dead process's refresh lock (TestSQLiteCrashDuringRefresh);
		// here it only has to work again once that lock has expired.
		var last callResult
		took, err := retryFor(20*time.Second, func() error {
			if last = br.call(a, "/api/whoami", 30*time.Second); last.status != http.StatusOK {
				return fmt.Errorf("%v", last)
			}
			return nil
		})
		if err != nil {
			t.Errorf("session %d (%s) API call after restart: %v", i, users[i][0], err)
		} else if took > 2*time.Second {
			t.Logf("session %d (%s): API call after restart took %v to succeed (stale refresh lock of the killed process)", i, users[i][0], took.Round(time.Millisecond))
		}
	}

	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	rows.Close()
	if len(msgs) != 1 || msgs[0] != "ok" {
		t.Errorf("PRAGMA integrity_check: %q", msgs)
	}
	var sessions int
	if err := db.QueryRow("SELECT count(*) FROM sessions").Scan(&sessions); err != nil {
		t.Logf("count sessions: %v", err)
	} else {
		t.Logf("sessions in the file after the crash: %d", sessions)
	}
}

// TestSQLiteCrashDuringRefresh: the process dies (kill -9) while it holds
// a session's refresh lock, waiting for the token endpoint. The IdP never
// saw the refresh, so the stored refresh token is still good; after a
// restart on the same file the session's next API call must refresh and
// succeed promptly. A sqlite file is served by one process, so a lock left
// by the process before this one can only be stale.
func TestSQLiteCrashDuringRefresh(t *testing.T) {
	t.Parallel()
	gate := newRefreshGate()
	st := newProcStack(t, procStackOptions{accessTokenLifetime: 2 * time.Second, wrapOP: gate.wrap})
	a := st.startBFF(t, "A", "sqlite:"+filepath.Join(st.tmp, "s.db"))
	br := st.newLBBrowser()
	defer br.close()
	br.login(t, a, "alice", "alice-pass")
	if r := br.call(a, "/api/whoami", 5*time.Second); r.status != http.StatusOK {
		t.Fatalf("/api/whoami: %v", r)
	}

	time.Sleep(2200 * time.Millisecond) // the access token has expired
	gate.holding.Store(true)
	inFlight := make(chan callResult, 1)
	go func() { inFlight <- br.call(a, "/api/whoami", 30*time.Second) }()
	select {
	case <-gate.arrived:
	case r := <-inFlight:
		t.Fatalf("/api/whoami did not refresh: %v", r)
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh reached the OP")
	}
	a.kill() // mid-refresh: the refresh lock is taken, the token call open
	gate.holding.Store(false)
	<-inFlight
	grants := st.op.RefreshGrants()

	a.start()
	if r := br.call(a, "/bff/user", 5*time.Second); r.status != http.StatusOK {
		t.Fatalf("/bff/user after the restart: %v", r)
	}
	r := br.call(a, "/api/whoami", 30*time.Second)
	if r.status == http.StatusOK && r.took <= 3*time.Second {
		t.Logf("/api/whoami after kill -9 mid-refresh and restart: %v", r)
	} else {
		t.Errorf("/api/whoami after kill -9 mid-refresh and restart: %v; want 200 within 3s "+
			"(the killed process's refresh lock must not block the new process)", r)
		took, err := retryFor(20*time.Second, func() error {
			if r := br.call(a, "/api/whoami", 30*time.Second); r.status != http.StatusOK {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
		t.Logf("/api/whoami 200 again %v later (err %v)", took.Round(time.Millisecond), err)
	}
	if n := st.op.RefreshGrants() - grants; n < 1 {
		t.Errorf("%d refresh grants at the OP after the restart", n)
	}
}

// lbTryLogin is login without the test's failure reporting, for load
// goroutines.
func lbTryLogin(br *lbBrowser, p *bffProc, username, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := br.get(ctx, p, "/bff/login", nil)
	if err != nil {
		return err
	}
	drainBody(resp)
	if resp.StatusCode != http.StatusFound {
		return fmt.Errorf("login: %d", resp.StatusCode)
	}
	resp, err = br.s.op.Login(ctx, br.client(p), resp.Header.Get("Location"), username, password)
	if err != nil {
		return err
	}
	drainBody(resp)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, resp.Header.Get("Location"), nil)
	resp, err = br.client(p).Do(req)
	if err != nil {
		return err
	}
	drainBody(resp)
	if resp.StatusCode != http.StatusFound {
		return fmt.Errorf("callback: %d", resp.StatusCode)
	}
	return nil
}

// TestRestartKeepsSessions: a clean restart (SIGTERM, start) keeps the
// session with the sqlite store and loses it with memory:.
func TestRestartKeepsSessions(t *testing.T) {
	t.Parallel()
	st := newProcStack(t, procStackOptions{})
	for _, tc := range []struct {
		name, store string
		survives    bool
	}{
		{"sqlite", "sqlite:" + filepath.Join(st.tmp, "restart.db"), true},
		{"memory", "memory:", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := st.startBFF(t, tc.name, tc.store)
			br := st.newLBBrowser()
			defer br.close()
			br.login(t, p, "alice", "alice-pass")
			if r := br.call(p, "/bff/user", 5*time.Second); r.status != http.StatusOK {
				t.Fatalf("/bff/user before the restart: %v", r)
			}
			p.stop()
			p.start()
			br.close() // connections to the old process are gone
			r := br.call(p, "/bff/user", 5*time.Second)
			if tc.survives {
				if r.status != http.StatusOK || r.body["sub"] != "user-alice" {
					t.Errorf("/bff/user after a clean restart: %v, want 200", r)
				}
				if r := br.call(p, "/api/whoami", 5*time.Second); r.status != http.StatusOK {
					t.Errorf("/api/whoami after a clean restart: %v", r)
				}
			} else {
				expect401(t, "/bff/user after a restart with memory:", r, "login_required")
			}
		})
	}
}
