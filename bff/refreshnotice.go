package bff

import (
	"context"
	"log/slog"
	"sync"

	"github.com/bffproxy/bff/sessionstore"
)

// refreshNotices wakes the requests of this instance that wait for another
// instance's refresh of the same session. The refreshing instance publishes
// a notice once the new tokens are stored (see publishRefreshed); the waiter
// then re-reads the record at once, instead of polling the store for it.
//
// A notice is a wake-up call, not a result: the waiter still reads the
// store, which stays the truth. A lost notice (the pub/sub connection
// dropped) only delays the waiter until its slow fallback check.
type refreshNotices struct {
	mu      sync.Mutex
	waiting map[string]chan struct{}
}

func newRefreshNotices() *refreshNotices {
	return &refreshNotices{waiting: make(map[string]chan struct{})}
}

// wait returns a channel that is closed by the next notice for key. Take
// it before looking at the store, so a notice that arrives in between is
// not missed; give it back with stop.
func (n *refreshNotices) wait(key string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := n.waiting[key]
	if ch == nil {
		ch = make(chan struct{})
		n.waiting[key] = ch
	}
	return ch
}

// stop forgets the waiters of key, unless a notice already did. On one
// instance only one request waits per session (the others share its
// singleflight), so there is no one else to forget.
func (n *refreshNotices) stop(key string, ch <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur := n.waiting[key]; cur != nil && (<-chan struct{})(cur) == ch {
		delete(n.waiting, key)
	}
}

func (n *refreshNotices) notify(key string) {
	n.mu.Lock()
	ch := n.waiting[key]
	delete(n.waiting, key)
	n.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// publishRefreshed tells every instance that sess has new tokens in the
// store. A failure is logged: waiters fall back to their periodic check.
func (s *Server) publishRefreshed(ctx context.Context, sess *sessionstore.Session) {
	ev := sessionstore.Event{Key: sess.Key, Handle: sess.Handle, Refreshed: true}
	if err := s.store.Publish(ctx, ev); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "refresh notice not published; waiting instances notice on their next check",
			slog.String("handle", sess.Handle), slog.String("error", err.Error()))
	}
}
