package bff_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowRefreshes delays every refresh grant on its way to the real OP: a
// slow token endpoint, which the embedded OP cannot be asked to be.
type slowRefreshes struct {
	delay time.Duration
	next  http.RoundTripper
	calls atomic.Int64
}

func (s *slowRefreshes) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil && strings.HasSuffix(req.URL.Path, "/token") {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte("grant_type=refresh_token")) {
			s.calls.Add(1)
			select {
			case <-time.After(s.delay):
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
	}
	return s.next.RoundTrip(req)
}

// TestRefreshAheadNoRequestWaits: a session in steady use never waits on
// the token endpoint. With 6-second access tokens and a token endpoint that
// takes 500 ms, a request every 100 ms for 13 s (two token lifetimes) is
// never as slow as one token call, while the OP sees the refreshes. (The
// same at full scale — 20-second tokens, 1.5 s token calls, a request every
// 0.5 s for 50 s — is `go run ./cmd/bffbench -scenario ahead`.)
func TestRefreshAheadNoRequestWaits(t *testing.T) {
	const (
		lifetime = 6 * time.Second
		delay    = 500 * time.Millisecond
		every    = 100 * time.Millisecond
		period   = 13 * time.Second
	)
	slow := &slowRefreshes{delay: delay, next: http.DefaultTransport}
	st := mustStartStack(t, stackOptions{accessTokenLifetime: lifetime, idpClient: &http.Client{Transport: slow}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	var slowest time.Duration
	var over int
	calls := 0
	for start := time.Now(); time.Since(start) < period; calls++ {
		t0 := time.Now()
		resp := b.api(t, "/api/whoami")
		took := time.Since(t0)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d after %v: status %d", calls, time.Since(start).Round(time.Millisecond), resp.StatusCode)
		}
		slowest = max(slowest, took)
		if took >= delay {
			over++
			t.Errorf("call %d after %v took %v: it waited on the token endpoint", calls, time.Since(start).Round(time.Millisecond), took.Round(time.Millisecond))
		}
		time.Sleep(every)
	}
	grants := st.op.RefreshGrants()
	t.Logf("%d calls, slowest %v, %d as slow as a token call; %d refresh grants at the OP", calls, slowest.Round(time.Millisecond), over, grants)
	// Short tokens are refreshed after about a quarter of their lifetime
	// (see aheadMargin; the lifetime counts from the start of the token
	// call, 6.5 s here), never on every request: a refresh at most every
	// 1.6 s makes 2 (the synchronous path alone) to 9 in 13 s.
	if grants < 2 || grants > 9 {
		t.Errorf("%d refresh grants at the OP in %v of use, want 2 to 9", grants, period)
	}
}

// TestRefreshAheadSkipsIdleSessions: a session that makes no requests is
// not refreshed in the background; its next request past expiry refreshes
// synchronously (the fallback) and succeeds.
func TestRefreshAheadSkipsIdleSessions(t *testing.T) {
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first call: %d", resp.StatusCode)
	}
	time.Sleep(2500 * time.Millisecond)
	if n := st.op.RefreshGrants(); n != 0 {
		t.Fatalf("%d refresh grants for an idle session, want 0", n)
	}
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("call after expiry: %d", resp.StatusCode)
	}
	if n := st.op.RefreshGrants(); n != 1 {
		t.Fatalf("%d refresh grants after the synchronous refresh, want 1", n)
	}
}
