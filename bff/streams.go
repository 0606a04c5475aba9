package bff

import (
	"context"
	"sync"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// streamLimits counts the long-lived responses of this instance: session
// event streams, and proxied event streams and WebSockets. Each holds a
// connection (two, when proxied) and a goroutine for as long as the tab
// stays open, so a single cookie opening hundreds of them must not use up
// what every other user needs. A session gets MaxSessionStreams (429
// beyond); the instance MaxStreams in all (503 with Retry-After beyond).
type streamLimits struct {
	max, perSession int

	mu        sync.Mutex
	total     int
	bySession map[string]int
}

func newStreamLimits(max, perSession int) *streamLimits {
	return &streamLimits{max: max, perSession: perSession, bySession: make(map[string]int)}
}

// acquire takes a place for one stream of the session under key ("" for a
// stream without a session, which counts only toward the instance's cap).
// release gives it back; calling it more than once is harmless.
func (l *streamLimits) acquire(key string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if key != "" && l.bySession[key] >= l.perSession {
		return nil, errTooManyStreams(l.perSession)
	}
	if l.total >= l.max {
		return nil, errStreamCapacity()
	}
	l.total++
	if key != "" {
		l.bySession[key]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if key == "" {
				return
			}
			if n := l.bySession[key] - 1; n > 0 {
				l.bySession[key] = n
			} else {
				delete(l.bySession, key)
			}
		})
	}, nil
}

// watchSession re-reads the session every heartbeat while a proxied stream
// is open, and cuts the stream once the session is gone or expired. Ending
// a session cuts its streams at once through the store's events; the store
// stays the truth when an instance misses one (pub/sub is best effort), so
// a missed event delays the cut by at most one heartbeat.
func (s *Server) watchSession(ctx context.Context, sess *sessionstore.Session, cut func()) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, ended := s.sessionGone(ctx, sess); ended {
				cut()
				return
			}
		}
	}
}
