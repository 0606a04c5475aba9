package bff

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// Refresh ahead of expiry.
//
// A session in use gets its access token refreshed in the background a
// little before the synchronous refresh margin is reached, so in steady
// state no request waits on the token endpoint: the request that notices
// the token is due keeps using the current, still valid token, and a
// background refresh replaces it. Only sessions that make requests are
// refreshed (an idle session's token simply expires; its next request
// refreshes synchronously). The background refresh is the same cluster-wide
// single flight as the synchronous one — the in-process singleflight, the
// store's lock and the re-read under it — so one instance does it, and a
// request that reaches the synchronous margin meanwhile joins it rather
// than starting another.
const (
	// maxAheadRefreshes bounds the background refreshes in flight on one
	// instance; a session that finds them all busy is refreshed by the
	// synchronous path if it gets that far.
	maxAheadRefreshes = 8
	// maxAheadLead caps how much earlier than the synchronous margin a
	// background refresh starts.
	maxAheadLead = 30 * time.Second
)

// refreshAhead holds the background refreshes in flight.
type refreshAhead struct {
	mu       sync.Mutex
	inflight map[string]struct{}
}

func newRefreshAhead() *refreshAhead {
	return &refreshAhead{inflight: make(map[string]struct{})}
}

// aheadMargin is how long before expiry a session in use is refreshed in the
// background: the synchronous margin plus a lead of half of it (at most
// maxAheadLead), less a jitter of up to a quarter of the lead that is fixed
// per session, so sessions that signed in together do not all refresh at
// once. With 20-second tokens: synchronous at 10 s left, ahead at 15 to
// 13.75 s left, which leaves a slow token endpoint seconds to answer. The
// price is paid by very short tokens only, whose synchronous margin is half
// their lifetime: they are refreshed after about a quarter of it instead
// of half. With 5-minute tokens and the default 30 s skew, the background
// refresh comes 45 to 41 s before expiry instead of 30 s.
func (s *Server) aheadMargin(sess *sessionstore.Session) time.Duration {
	margin := s.refreshMargin(sess)
	lead := min(margin/2, maxAheadLead)
	h := fnv.New32a()
	h.Write([]byte(sess.Key))
	jitter := time.Duration(float64(lead/4) * float64(h.Sum32()%1024) / 1024)
	return margin + lead - jitter
}

// dueAhead reports whether a session in use should be refreshed in the
// background now.
func (s *Server) dueAhead(sess *sessionstore.Session, now time.Time) bool {
	return !now.Add(s.aheadMargin(sess)).Before(sess.AccessExpiresAt)
}

// maybeRefreshAhead starts a background refresh of sess when it is due and
// none is running for it here. It never blocks the request.
func (s *Server) maybeRefreshAhead(sess *sessionstore.Session) {
	if !s.dueAhead(sess, time.Now()) {
		return
	}
	ra := s.ahead
	ra.mu.Lock()
	if _, busy := ra.inflight[sess.Key]; busy || len(ra.inflight) >= maxAheadRefreshes {
		ra.mu.Unlock()
		return
	}
	ra.inflight[sess.Key] = struct{}{}
	ra.mu.Unlock()

	stale := *sess
	go func() {
		defer func() {
			ra.mu.Lock()
			delete(ra.inflight, stale.Key)
			ra.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), refreshWait+refreshTimeout)
		defer cancel()
		ch := s.refreshes.DoChan(stale.Key, func() (any, error) {
			return s.refreshLocked(ctx, &stale, s.dueAhead)
		})
		res := <-ch
		if res.Err == nil {
			return
		}
		if errors.Is(res.Err, errRefreshDenied) || errors.Is(res.Err, errSessionGone) {
			// Handled as the synchronous path would: a refused refresh ends
			// the session now rather than at the next request.
			_, _ = s.refreshFailed(ctx, &stale, res.Err)
			return
		}
		s.logger.LogAttrs(ctx, slog.LevelWarn, "background refresh failed; the next request past the margin refreshes",
			slog.String("handle", stale.Handle), slog.String("error", res.Err.Error()))
	}()
}
