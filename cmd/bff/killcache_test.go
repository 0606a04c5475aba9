package main

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestClusterKillRefusedAtNextRequestUnderLoad: with A's caches warm (the
// session's access token opened, its reads batched with other requests'),
// a session killed through B is refused by A at the very next request —
// ten times over, while another user's session keeps A's session reads
// busy, so the kill lands between batched reads.
func TestClusterKillRefusedAtNextRequestUnderLoad(t *testing.T) {
	t.Parallel()
	redisURL := sharedRedisURL(t)
	st := newProcStack(t, procStackOptions{})
	a := st.startBFF(t, "A", redisURL)
	b := st.startBFF(t, "B", redisURL)

	busy := st.newLBBrowser()
	defer busy.close()
	busy.login(t, a, "bob", "bob-pass")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				busy.call(a, "/api/whoami", 5*time.Second)
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	for i := range 10 {
		br := st.newLBBrowser()
		br.login(t, a, "alice", "alice-pass")
		user := br.call(a, "/bff/user", 5*time.Second)
		sid, _ := user.body["sid"].(string)
		for range 3 {
			if r := br.call(a, "/api/whoami", 5*time.Second); r.status != http.StatusOK {
				t.Fatalf("session %d: /api/whoami via A before the kill: %v", i, r)
			}
		}
		if r := procAdminDo(t, b, http.MethodDelete, "/admin/sessions/"+url.PathEscape(sid), 10*time.Second); r.status != http.StatusOK {
			t.Fatalf("session %d: kill through B: %v", i, r)
		}
		expect401(t, "next request via A after the kill", br.call(a, "/api/whoami", 5*time.Second), "session_ended")
		br.close()
	}
}
