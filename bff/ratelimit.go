package bff

import (
	"container/list"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// addrLimiter is a token bucket per client address: each address may spend
// burst events at once and regains rate events per second. The BFF uses it
// wherever one party could otherwise spend a budget that others need — failed
// admin tokens, invalid logout tokens, sign-in starts and callbacks — so a
// flood from one address slows that address only.
//
// Memory is bounded: at most max addresses are tracked, the least recently
// seen is forgotten first. An attacker who sprays addresses can push out old
// entries one by one, but never everyone's at once, and an address that is
// still being refused is seen on every attempt and so stays. IPv6 addresses
// count per /64, the block one subscriber usually holds, so that walking
// through one's own block does not buy a fresh budget each time.
type addrLimiter struct {
	rate  float64 // events regained per second
	burst float64
	max   int

	mu    sync.Mutex
	table map[string]*list.Element // of *addrBucket
	lru   list.List                // front: most recently seen
}

type addrBucket struct {
	key    string
	tokens float64
	last   time.Time
}

// newAddrLimiter allows perWindow events per window per address (all of
// them at once, then evenly) and tracks at most maxAddrs addresses.
// perWindow <= 0 turns the limiter off: nothing is ever limited.
func newAddrLimiter(perWindow int, window time.Duration, maxAddrs int) *addrLimiter {
	if perWindow <= 0 || window <= 0 {
		return nil
	}
	return &addrLimiter{
		rate:  float64(perWindow) / window.Seconds(),
		burst: float64(perWindow),
		max:   max(maxAddrs, 1),
		table: make(map[string]*list.Element),
	}
}

// limiterKey is the address an event counts against: the address itself,
// or its /64 for IPv6. A value that is not an address (a test's or a
// proxy's oddity) counts as itself.
func limiterKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Allowed reports whether addr has an event left, without spending it.
func (l *addrLimiter) Allowed(addr string, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.lookup(limiterKey(addr), now, false)
	return b == nil || b.tokens >= 1
}

// Spend records one event of addr.
func (l *addrLimiter) Spend(addr string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.lookup(limiterKey(addr), now, true)
	b.tokens = max(b.tokens-1, 0)
}

// Take spends one event of addr if it has one left, and reports whether it had.
func (l *addrLimiter) Take(addr string, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.lookup(limiterKey(addr), now, true)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// RetryAfter is how long addr must wait for its next event: at least a
// second, as Retry-After counts whole seconds.
func (l *addrLimiter) RetryAfter(addr string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.lookup(limiterKey(addr), now, false)
	if b == nil || b.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1-b.tokens)/l.rate)) * time.Second
}

// Len is the number of addresses tracked.
func (l *addrLimiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.table)
}

// lookup returns key's bucket refilled up to now and marks it as seen. A
// missing bucket is created (full) when create is set, evicting the least
// recently seen one if the table is full; otherwise it is nil.
func (l *addrLimiter) lookup(key string, now time.Time, create bool) *addrBucket {
	if e, ok := l.table[key]; ok {
		l.lru.MoveToFront(e)
		b := e.Value.(*addrBucket)
		if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
			b.tokens = min(l.burst, b.tokens+elapsed*l.rate)
			b.last = now
		}
		return b
	}
	if !create {
		return nil
	}
	for len(l.table) >= l.max {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.table, oldest.Value.(*addrBucket).key)
	}
	b := &addrBucket{key: key, tokens: l.burst, last: now}
	l.table[key] = l.lru.PushFront(b)
	return b
}

// perAddress refuses a request with 429 and Retry-After once its client
// address (see clientIP: behind a trusted proxy, the forwarded one) has
// spent its budget l. A nil l lets everything through.
func (s *Server) perAddress(l *addrLimiter, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, now := s.clientIP(r), time.Now()
		if !l.Take(addr, now) {
			s.writeError(w, r, errRateLimited("too many sign-in attempts from this address; try again shortly", l.RetryAfter(addr, now)))
			return
		}
		next.ServeHTTP(w, r)
	})
}
