package bff_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// scrape reads the admin listener's /metrics with the admin token.
func (st *stack) scrape(t *testing.T) string {
	t.Helper()
	resp, body := st.adminDo(t, http.MethodGet, "/metrics", testAdminToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	return body
}

// metricValue returns the value of the sample whose name and labels are
// exactly series (e.g. `bff_sessions_active` or `x_count{a="b"}`), or -1.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// TestMetricsAfterSignInAndAPICall: the latency histograms, the active
// sessions gauge and the outcome counters, with bounded labels only.
func TestMetricsAfterSignInAndAPICall(t *testing.T) {
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %d", resp.StatusCode)
	}
	if resp := b.get(t, "/api/whoami", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("whoami without the CSRF header: %d", resp.StatusCode)
	}
	time.Sleep(1100 * time.Millisecond) // inside the refresh margin (half of 2 s)
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami after refresh: %d", resp.StatusCode)
	}
	events := b.openStream(t, "/bff/session/events", nil)
	events.waitLine(t, ": session events", time.Second)

	body := st.scrape(t)
	want := map[string]float64{
		`bff_upstream_request_duration_seconds_count{code="2xx",method="GET",route="/api/"}`: 2,
		`bff_token_refresh_duration_seconds_count{result="ok"}`:                              1,
		`bff_token_refresh_duration_seconds_count{result="refused"}`:                         0,
		`bff_store_operation_duration_seconds_count{op="create",result="ok"}`:                1,
		`bff_sessions_active`:                                                 1,
		`bff_login_outcomes_total{result="ok"}`:                               1,
		`bff_csrf_refusals_total{kind="missing_header"}`:                      1,
		`bff_csrf_refusals_total{kind="cross_site"}`:                          0,
		`bff_open_streams{kind="session_events"}`:                             1,
		`bff_open_streams{kind="proxied"}`:                                    0,
		`bff_refresh_lock_wait_seconds_count{result="acquired"}`:              0,
		`bff_http_requests_total{class="2xx"}`:                                2, // the open stream counts when it ends
		`bff_store_operation_duration_seconds_count{op="update",result="ok"}`: 1,
	}
	for series, v := range want {
		if got := metricValue(t, body, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	if n := metricValue(t, body, `bff_store_operation_duration_seconds_count{op="get",result="ok"}`); n < 3 {
		t.Errorf("store gets timed: %v, want at least one per request", n)
	}
	// An upstream stream is counted while it is open.
	stream := b.openStream(t, "/api/events", csrf())
	stream.waitLine(t, "data:", 3*time.Second)
	if got := metricValue(t, st.scrape(t), `bff_open_streams{kind="proxied"}`); got != 1 {
		t.Errorf("open proxied streams: %v, want 1", got)
	}

	// No label value names a user or a session.
	handle := userSID(t, b)
	for _, secret := range []string{"user-alice", "alice", handle} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics mentions %q", secret)
		}
	}
	// Every bff_ series has labels from the bounded sets only.
	labelRe := regexp.MustCompile(`(\w+)="([^"]*)"`)
	allowed := map[string]bool{"route": true, "method": true, "code": true, "result": true, "op": true, "kind": true, "class": true, "cause": true, "le": true}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "bff_") {
			continue
		}
		for _, m := range labelRe.FindAllStringSubmatch(line, -1) {
			if !allowed[m[1]] {
				t.Errorf("unexpected label %q in %s", m[1], line)
			}
		}
	}
}

// TestRefreshHistogramBeforeFirstRefresh: the refresh histogram is there
// from the start, so dashboards and alerts see zeros rather than nothing.
func TestRefreshHistogramBeforeFirstRefresh(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	body := st.scrape(t)
	for _, r := range []string{"ok", "refused", "error"} {
		if v := metricValue(t, body, `bff_token_refresh_duration_seconds_count{result="`+r+`"}`); v != 0 {
			t.Errorf("refresh histogram %s before any refresh: %v, want a 0 series", r, v)
		}
	}
}

// TestSessionsActiveIsSampled: the gauge asks the store at most every 15 s,
// so a burst of scrapes costs one count.
func TestSessionsActiveIsSampled(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	if got := metricValue(t, st.scrape(t), "bff_sessions_active"); got != 1 {
		t.Fatalf("bff_sessions_active = %v, want 1", got)
	}
	st.newBrowser(t).mustLogin(t, "bob")
	for range 5 {
		body := st.scrape(t)
		if got := metricValue(t, body, "bff_sessions_active"); got != 1 {
			t.Fatalf("bff_sessions_active = %v within 15 s of the last count, want the sampled 1", got)
		}
		if n := metricValue(t, body, `bff_store_operation_duration_seconds_count{op="count",result="ok"}`); n != 1 {
			t.Fatalf("store counted %v times, want 1", n)
		}
	}
}

// TestRefreshLockWaitIsTimed: a refresh that finds the session's lock held
// (as by another instance) waits, and the wait is timed by its outcome.
func TestRefreshLockWaitIsTimed(t *testing.T) {
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second})
	b := st.newBrowser(t)
	cookie := findSetCookie(b.login(t, "alice", "alice-pass", "/"), "bff-session")
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	time.Sleep(1100 * time.Millisecond) // inside the refresh margin (half of 2 s)
	// Another instance's refresh lock on this session, held for 300 ms.
	lock, err := st.store.Lock(t.Context(), "refresh:"+sessionstore.KeyFromCookie(cookie.Value), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, func() { lock.Release(context.Background()) })
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %d", resp.StatusCode)
	}
	// The refresh may run in the background, after the response.
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		body = st.scrape(t)
		if metricValue(t, body, `bff_refresh_lock_wait_seconds_count{result="acquired"}`) != 0 {
			break
		}
	}
	if n := metricValue(t, body, `bff_refresh_lock_wait_seconds_count{result="acquired"}`); n != 1 {
		t.Errorf("lock waits that ended with the lock: %v, want 1", n)
	}
	if sum := metricValue(t, body, `bff_refresh_lock_wait_seconds_sum{result="acquired"}`); sum < 0.05 || sum > 5 {
		t.Errorf("lock wait of %v s, want about the 0.3 s the lock was held", sum)
	}
	if n := metricValue(t, body, `bff_token_refresh_duration_seconds_count{result="ok"}`); n != 1 {
		t.Errorf("refreshes after the wait: %v, want 1", n)
	}
}
