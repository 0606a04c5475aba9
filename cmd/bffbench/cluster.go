package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// tokenTimer wraps the OP: it delays every refresh grant by delay (a slow
// token endpoint, which the embedded OP cannot be asked to be) and records
// how long each refresh grant took to answer, delay included.
type tokenTimer struct {
	delay time.Duration
	mu    sync.Mutex
	took  []time.Duration
}

func (tt *tokenTimer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		refresh := r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token"
		if refresh && tt.delay > 0 {
			time.Sleep(tt.delay)
		}
		next.ServeHTTP(w, r)
		if refresh {
			tt.mu.Lock()
			tt.took = append(tt.took, time.Since(start))
			tt.mu.Unlock()
		}
	})
}

func (tt *tokenTimer) median() time.Duration {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if len(tt.took) == 0 {
		return 0
	}
	s := slices.Clone(tt.took)
	slices.Sort(s)
	return s[len(s)/2]
}

// cluster is two BFF instances sharing Redis, behind no load balancer: the
// caller picks the instance, as a balancer without stickiness would.
type cluster struct {
	a, b  *bffProc
	timer *tokenTimer
}

// stop stops both instances.
func (c *cluster) stop() {
	c.a.stop()
	c.b.stop()
}

func startCluster(ctx context.Context, st *stack, o *options, atLifetime, tokenDelay time.Duration) (*cluster, error) {
	if err := st.ensureUpstream(ctx); err != nil {
		return nil, err
	}
	addrA, err := freeAddr()
	if err != nil {
		return nil, err
	}
	addrB, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tt := &tokenTimer{delay: tokenDelay}
	if err := st.startOP(ctx, atLifetime, []string{addrA, addrB}, tt.wrap); err != nil {
		return nil, err
	}
	a, err := st.startBFF(ctx, "A", addrA, o.redisURL)
	if err != nil {
		return nil, err
	}
	b, err := st.startBFF(ctx, "B", addrB, o.redisURL)
	if err != nil {
		return nil, err
	}
	return &cluster{a: a, b: b, timer: tt}, nil
}

// apiClient sends browser-like API calls with a session cookie.
var apiClient = &http.Client{
	Transport:     &http.Transport{MaxIdleConnsPerHost: 128},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// call sends GET path with the cookie and the CSRF header to p and returns
// the status, the JSON body (if any) and how long it took.
func call(ctx context.Context, p *bffProc, path, cookie string) (int, map[string]any, time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.listen+path, nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("X-CSRF", "1")
	start := time.Now()
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m, took, nil
}

// adminDelete sends DELETE path to p's admin API and returns the status
// and how long it took.
func adminDelete(ctx context.Context, p *bffProc, path string) (int, time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+p.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	start := time.Now()
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	drain(resp)
	return resp.StatusCode, time.Since(start), nil
}

// refreshStorm: after the access token expired, 50 concurrent calls of one
// session split over two instances must make exactly one refresh grant at
// the OP, all succeed, and the waiters' p99 stay under twice one token
// round trip.
func refreshStorm(ctx context.Context, st *stack, o *options, out io.Writer) (bool, error) {
	const (
		lifetime = 3 * time.Second
		calls    = 50
		rounds   = 3
	)
	c, err := startCluster(ctx, st, o, lifetime, o.tokenDelay)
	if err != nil {
		return false, err
	}
	defer c.stop()
	cookie, err := st.login(ctx, c.a.listen, "alice", "alice-pass")
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "refresh storm: %d concurrent calls of one session over two instances (Redis), %v access tokens, token endpoint delayed %v\n", calls, lifetime, o.tokenDelay)
	allOK := true
	for round := 1; round <= rounds; round++ {
		time.Sleep(lifetime + 300*time.Millisecond) // expired, and idle: no background refresh
		before := st.op.RefreshGrants()
		lat := make([]time.Duration, calls)
		status := make([]int, calls)
		var wg sync.WaitGroup
		gun := make(chan struct{})
		for i := range calls {
			p := c.a
			if i%2 == 1 {
				p = c.b
			}
			wg.Go(func() {
				<-gun
				status[i], _, lat[i], _ = call(ctx, p, "/api/storm", cookie)
			})
		}
		close(gun)
		wg.Wait()
		grants := st.op.RefreshGrants() - before
		failed := 0
		for _, s := range status {
			if s != http.StatusOK {
				failed++
			}
		}
		slices.Sort(lat)
		rt := c.timer.median()
		p99 := percentile(lat, 0.99)
		ok := grants == 1 && failed == 0 && p99 < 2*rt
		allOK = allOK && ok
		fmt.Fprintf(out, "  round %d: %d token call(s) at the OP, %d failed; waiters p50 %v, p99 %v; one token round trip %v (p99 target < %v): %s\n",
			round, grants, failed, percentile(lat, 0.5).Round(time.Millisecond), p99.Round(time.Millisecond), rt.Round(time.Millisecond), (2 * rt).Round(time.Millisecond), verdict(ok))
	}
	return allOK, nil
}

// killLatency: a session made on A and killed through B's admin API is
// refused by A at its very next request.
func killLatency(ctx context.Context, st *stack, o *options, out io.Writer) (bool, error) {
	const n = 20
	c, err := startCluster(ctx, st, o, time.Hour, 0)
	if err != nil {
		return false, err
	}
	defer c.stop()
	var kills, refused []time.Duration
	served := 0
	for range n {
		cookie, err := st.login(ctx, c.a.listen, "alice", "alice-pass")
		if err != nil {
			return false, err
		}
		status, user, _, err := call(ctx, c.a, "/bff/user", cookie)
		if err != nil || status != http.StatusOK {
			return false, fmt.Errorf("/bff/user on A: %d %v", status, err)
		}
		if s, _, _, _ := call(ctx, c.a, "/api/warm", cookie); s != http.StatusOK {
			return false, fmt.Errorf("API on A before the kill: %d", s)
		}
		handle, _ := user["sid"].(string)
		start := time.Now()
		status, took, err := adminDelete(ctx, c.b, "/admin/sessions/"+url.PathEscape(handle))
		if err != nil || status != http.StatusOK {
			return false, fmt.Errorf("kill through B: %d %v", status, err)
		}
		s, _, _, err := call(ctx, c.a, "/api/after-kill", cookie)
		if err != nil {
			return false, err
		}
		if s == http.StatusUnauthorized {
			refused = append(refused, time.Since(start))
		} else {
			served++
		}
		kills = append(kills, took)
	}
	slices.Sort(kills)
	slices.Sort(refused)
	ok := served == 0
	fmt.Fprintf(out, "kill latency: %d sessions made on A, killed through B's admin API (Redis)\n", n)
	fmt.Fprintf(out, "  kill request p50 %v, p99 %v; A refused the cookie at its next request %d of %d times (kill sent → 401 p50 %v, p99 %v): %s\n",
		percentile(kills, 0.5).Round(time.Microsecond), percentile(kills, 0.99).Round(time.Microsecond), len(refused), n,
		percentile(refused, 0.5).Round(time.Microsecond), percentile(refused, 0.99).Round(time.Microsecond), verdict(ok))
	return ok, nil
}

// refreshAhead: with 20-second access tokens and a token endpoint that
// takes 1.5 s, a session making a request every 0.5 s for 50 s (spread
// over two instances) never waits on the IdP: no request over 1 s, while
// the OP sees the refreshes.
func refreshAhead(ctx context.Context, st *stack, o *options, out io.Writer) (bool, error) {
	const (
		lifetime = 20 * time.Second
		delay    = 1500 * time.Millisecond
		every    = 500 * time.Millisecond
		period   = 50 * time.Second
		bound    = time.Second
	)
	c, err := startCluster(ctx, st, o, lifetime, delay)
	if err != nil {
		return false, err
	}
	defer c.stop()
	cookie, err := st.login(ctx, c.a.listen, "alice", "alice-pass")
	if err != nil {
		return false, err
	}
	before := st.op.RefreshGrants()
	var lat []time.Duration
	failed, over := 0, 0
	for i, start := 0, time.Now(); time.Since(start) < period; i++ {
		p := c.a
		if i%2 == 1 {
			p = c.b
		}
		s, _, took, err := call(ctx, p, "/api/steady", cookie)
		if err != nil || s != http.StatusOK {
			failed++
		}
		if took > bound {
			over++
		}
		lat = append(lat, took)
		time.Sleep(every)
	}
	grants := st.op.RefreshGrants() - before
	slices.Sort(lat)
	ok := failed == 0 && over == 0 && grants >= 2
	fmt.Fprintf(out, "refresh ahead: %v access tokens, token endpoint %v, a request every %v for %v over two instances (Redis)\n", lifetime, delay, every, period)
	fmt.Fprintf(out, "  %d requests, %d failed, %d over %v; p50 %v, p99 %v, max %v; %d refresh grants at the OP: %s\n",
		len(lat), failed, over, bound, percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond),
		lat[len(lat)-1].Round(time.Millisecond), grants, verdict(ok))
	return ok, nil
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}
