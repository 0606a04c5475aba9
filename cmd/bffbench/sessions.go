package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/redis"
)

// others is how many sessions of other users the kill-user and memory
// scenarios store.
const others = 100_000

// fillSessions stores n copies of a real session record (made by a real
// login, so its sealed tokens have real sizes) under new keys, for other
// subjects. They expire after ttl. It returns how long the writes took.
func fillSessions(ctx context.Context, store sessionstore.Store, model *sessionstore.Session, n int, ttl time.Duration) (time.Duration, error) {
	start := time.Now()
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				b := make([]byte, 32)
				_, _ = rand.Read(b)
				s := *model
				s.Key = sessionstore.KeyFromCookie(base64.RawURLEncoding.EncodeToString(b))
				s.Handle = sessionstore.HandleFromKey(s.Key)
				s.Subject = "bench-user-" + strconv.FormatInt(i, 10)
				s.IdPSID = ""
				s.ExpiresAt = time.Now().Add(ttl)
				if err := store.Create(ctx, &s); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// modelSession signs alice in through p and returns her stored record.
func modelSession(ctx context.Context, st *stack, p *bffProc, store sessionstore.Store) (*sessionstore.Session, error) {
	cookie, err := st.login(ctx, p.listen, "alice", "alice-pass")
	if err != nil {
		return nil, err
	}
	_, value, _ := strings.Cut(cookie, "=")
	return store.Get(ctx, sessionstore.KeyFromCookie(value))
}

// killUserCost: the time to kill every session of one user (one session)
// with no other sessions stored and with 100k sessions of other users
// stored must be the same within noise: the store finds a user's sessions
// by index, never by a scan.
func killUserCost(ctx context.Context, st *stack, o *options, out io.Writer) (bool, error) {
	const reps = 10
	c, err := startCluster(ctx, st, o, time.Hour, 0)
	if err != nil {
		return false, err
	}
	defer c.stop()
	store, err := redis.Open(ctx, o.redisURL, redis.Options{})
	if err != nil {
		return false, err
	}
	defer store.Close()
	measure := func() ([]time.Duration, error) {
		var took []time.Duration
		for range reps {
			if _, err := st.login(ctx, c.a.listen, "bob", "bob-pass"); err != nil {
				return nil, err
			}
			status, d, err := adminDelete(ctx, c.b, "/admin/users/user-bob/sessions")
			if err != nil || status != http.StatusOK {
				return nil, fmt.Errorf("kill-user: %d %v", status, err)
			}
			took = append(took, d)
		}
		slices.Sort(took)
		return took, nil
	}
	alone, err := measure()
	if err != nil {
		return false, err
	}
	model, err := modelSession(ctx, st, c.a, store)
	if err != nil {
		return false, err
	}
	fill, err := fillSessions(ctx, store, model, others, 10*time.Minute)
	if err != nil {
		return false, fmt.Errorf("store %d sessions: %w", others, err)
	}
	crowded, err := measure()
	if err != nil {
		return false, err
	}
	m0, m1 := percentile(alone, 0.5), percentile(crowded, 0.5)
	// Within noise: on a shared machine, twice as slow or 5 ms slower is
	// still noise; a scan of 100k sessions would take far longer.
	ok := m1 <= max(2*m0, m0+5*time.Millisecond)
	fmt.Fprintf(out, "kill-user cost (Redis, kill of one user's session through the admin API, %d times each)\n", reps)
	fmt.Fprintf(out, "  0 other sessions: median %v (min %v, max %v)\n", m0.Round(time.Microsecond), alone[0].Round(time.Microsecond), alone[len(alone)-1].Round(time.Microsecond))
	fmt.Fprintf(out, "  %d other sessions (stored in %v, expire in 10 min): median %v (min %v, max %v): %s\n", others, fill.Round(time.Millisecond),
		m1.Round(time.Microsecond), crowded[0].Round(time.Microsecond), crowded[len(crowded)-1].Round(time.Microsecond), verdict(ok))
	return ok, nil
}

// redisMemory: Redis's used_memory grows by this much per stored session
// (a real login's record, copied).
func redisMemory(ctx context.Context, st *stack, o *options, out io.Writer) (bool, error) {
	const n = 20_000
	c, err := startCluster(ctx, st, o, time.Hour, 0)
	if err != nil {
		return false, err
	}
	defer c.stop()
	opts, err := goredis.ParseURL(o.redisURL)
	if err != nil {
		return false, fmt.Errorf("redis URL: %w", err)
	}
	raw := goredis.NewClient(opts)
	defer raw.Close()
	store, err := redis.Open(ctx, o.redisURL, redis.Options{Prefix: "bffbench-mem:"})
	if err != nil {
		return false, err
	}
	defer store.Close()
	main, err := redis.Open(ctx, o.redisURL, redis.Options{})
	if err != nil {
		return false, err
	}
	defer main.Close()
	model, err := modelSession(ctx, st, c.a, main)
	if err != nil {
		return false, err
	}
	before, err := usedMemory(ctx, raw)
	if err != nil {
		return false, err
	}
	if _, err := fillSessions(ctx, store, model, n, 2*time.Minute); err != nil {
		return false, err
	}
	after, err := usedMemory(ctx, raw)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "Redis memory: %d sessions (a real login's record, %d-byte sealed access token): used_memory %d → %d, %.0f bytes per session\n",
		n, len(model.AccessToken), before, after, float64(after-before)/n)
	return true, nil
}

func usedMemory(ctx context.Context, c *goredis.Client) (int64, error) {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("INFO memory: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// loginThroughput: complete logins (the BFF's /bff/login, the OP's form,
// the callback with its code exchange and ID token check) per second, by 8
// concurrent browsers, for each store.
func loginThroughput(ctx context.Context, st *stack, o *options, out io.Writer) (bool, error) {
	const (
		workers = 8
		period  = 5 * time.Second
	)
	if err := st.ensureUpstream(ctx); err != nil {
		return false, err
	}
	addrs, err := freeAddrs(len(o.stores))
	if err != nil {
		return false, err
	}
	if err := st.startOP(ctx, time.Hour, addrs, nil); err != nil {
		return false, err
	}
	fmt.Fprintf(out, "login throughput: %d concurrent browsers for %v (OP in the bench process, on the servers' core; per-address sign-in limit off)\n", workers, period)
	allOK := true
	for i, name := range o.stores {
		spec, ok := storeSpec(name, o.redisURL, st.dir)
		if !ok {
			return false, fmt.Errorf("unknown store %q", name)
		}
		p, err := st.startBFF(ctx, "login-"+name, addrs[i], spec)
		if err != nil {
			return false, err
		}
		var mu sync.Mutex
		var lat []time.Duration
		failed := 0
		firstErr := ""
		deadline := time.Now().Add(period)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					t0 := time.Now()
					_, err := st.login(ctx, p.listen, "alice", "alice-pass")
					mu.Lock()
					if err != nil {
						failed++
						if firstErr == "" {
							firstErr = err.Error()
						}
					} else {
						lat = append(lat, time.Since(t0))
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		p.stop()
		slices.Sort(lat)
		fmt.Fprintf(out, "  %-7s %6.1f logins/s, p50 %v, p99 %v, %d failed %s\n", name, float64(len(lat))/period.Seconds(),
			percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond), failed, firstErr)
		if failed > 0 {
			allOK = false
		}
	}
	return allOK, nil
}
