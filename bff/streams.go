package bff

import (
	"context"
	"sync"
	"time"
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

// watchStream cuts a proxied stream when the instance drains, and, for a
// session's stream, re-reads the session every heartbeat and cuts the
// stream once the session is gone or expired. Streams never end by
// themselves: left open, they would hold a shutdown for its whole timeout,
// and a WebSocket, whose connection the server no longer tracks, would
// outlive it. Ending a session cuts its streams at once through the
// store's events; the store stays the truth when an instance misses one
// (pub/sub is best effort), so a missed event delays the cut by at most
// one heartbeat.
func (s *Server) watchStream(ctx context.Context, call *proxyCall) {
	var heartbeat <-chan time.Time
	if call.sess != nil {
		t := time.NewTicker(s.cfg.HeartbeatInterval)
		defer t.Stop()
		heartbeat = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.draining:
			call.cut()
			return
		case <-heartbeat:
			if _, ended := s.sessionGone(ctx, call.sess); ended {
				call.cut()
				return
			}
		}
	}
}
