package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
	// untilStop runs f again and again until the load stops.
	untilStop := func(f func()) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				f()
			}
		})
	}
	for _, br := range browsers {
		for _, path := range []string{"/bff/user", "/api/whoami", "/bff/user", "/api/whoami"} {
			untilStop(func() {
				r := br.call(a, path, 5*time.Second)
				switch {
				case r.err != nil:
					count("transport error", r)
				case r.status == http.StatusOK:
					count("200", nil)
				default:
					count(fmt.Sprint(r.status), r)
				}
			})
		}
	}
	untilStop(func() {
		br := st.newLBBrowser()
		err := lbTryLogin(br, a, "bob", "bob-pass")
		br.close()
		if err != nil {
			count("login error", err)
		} else {
			count("login", nil)
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
