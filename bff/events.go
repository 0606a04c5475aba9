package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// handleEvents streams the session's life to every open tab as Server-Sent
// Events: "session-ended" with the cause when the session is ended anywhere
// in the cluster, and "session-expiring" shortly before the absolute
// timeout. The stream closes after session-ended, and after
// "server-shutdown" when this instance is going away: the tab reconnects
// (to another instance) instead of taking the dropped stream for an error.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) error {
	ctx, att, sess, err := s.attachSession(r, true)
	defer att.detach()
	if err != nil {
		return err
	}
	release, err := s.streams.acquire(sess.Key)
	if err != nil {
		return err
	}
	defer release()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	open := s.metrics.openStreams[streamSessionEvents]
	open.Inc()
	defer open.Dec()
	fmt.Fprint(w, ": session events\n\n")
	_ = rc.Flush()

	expiringAt := sess.AbsoluteExpiresAt.Add(-s.cfg.ExpiringNotice)
	expiring := time.NewTimer(max(time.Until(expiringAt), 0))
	defer expiring.Stop()
	heartbeat := time.NewTicker(s.cfg.HeartbeatInterval)
	defer heartbeat.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.draining:
			writeEvent(w, "server-shutdown", struct{}{})
			_ = rc.Flush()
			return nil
		case ev := <-att.ended:
			writeEvent(w, "session-ended", map[string]string{"cause": string(ev.Cause)})
			_ = rc.Flush()
			return nil
		case <-expiring.C:
			writeEvent(w, "session-expiring", map[string]int64{"expiresIn": int64(time.Until(sess.AbsoluteExpiresAt).Seconds())})
			_ = rc.Flush()
		case <-heartbeat.C:
			// The store stays the truth: a session that expired, or whose
			// end this instance missed (pub/sub is best effort), is noticed
			// here at the latest.
			if cause, ended := s.sessionGone(ctx, sess); ended {
				writeEvent(w, "session-ended", map[string]string{"cause": string(cause)})
				_ = rc.Flush()
				return nil
			}
			fmt.Fprint(w, ": heartbeat\n\n")
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
	}
}

// sessionGone reports whether the session no longer exists, and why.
// A store that cannot be reached is not a reason to end anything.
func (s *Server) sessionGone(ctx context.Context, sess *sessionstore.Session) (sessionstore.Cause, bool) {
	cur, err := s.store.Get(ctx, sess.Key)
	if err == nil && cur.Live(time.Now()) {
		return "", false
	}
	if err != nil && !isNotFound(err) {
		return "", false
	}
	if tomb, err := s.store.Tombstone(ctx, sess.Key); err == nil {
		return tomb.Cause, true
	}
	return sessionstore.CauseExpired, true
}

func writeEvent(w http.ResponseWriter, name string, data any) {
	b, _ := json.Marshal(data)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
}
