package bff

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/bffproxy/bff/sessionstore"
)

// hub tracks, per session, the requests that are still open on this
// instance — proxied calls (including SSE and WebSocket streams) and
// session-event streams — so that ending a session can cut them at once.
type hub struct {
	mu    sync.Mutex
	byKey map[string]map[*attachment]struct{}
}

// attachment is one open request of a session. A proxied request is ended
// by cancelling its context (ReverseProxy then closes the upstream and
// hijacked connections); an event stream receives the event first so it can
// tell its tab why. It is one allocation per request, with its methods
// instead of closures: it is made on every proxied call.
type attachment struct {
	h      *hub
	key    string // the session's store key
	cancel context.CancelCauseFunc
	ended  chan sessionstore.Event // nil for proxied requests
}

func newHub() *hub {
	return &hub{byKey: make(map[string]map[*attachment]struct{})}
}

// errSessionCut is the cause of a request context that ended because its
// session ended.
var errSessionCut = errors.New("session ended")

// sessionCut reports whether ctx ended because its session ended.
func sessionCut(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errSessionCut)
}

// attach binds ctx to the session under key. The returned context ends, with
// the cause errSessionCut, when the session is ended; the attachment's
// detach must be called when the request is done.
//
// Attach before reading the session, then read it: a kill that comes after
// the attach cuts the request, and one that came before is seen by the read.
// The other order leaves a moment in which a kill is missed and a stream
// opened in it would outlive its session.
func (h *hub) attach(ctx context.Context, key string, wantEvent bool) (context.Context, *attachment) {
	ctx, cancelCause := context.WithCancelCause(ctx)
	a := &attachment{h: h, key: key, cancel: cancelCause}
	if wantEvent {
		a.ended = make(chan sessionstore.Event, 1)
	}
	h.mu.Lock()
	set := h.byKey[key]
	if set == nil {
		set = make(map[*attachment]struct{})
		h.byKey[key] = set
	}
	set[a] = struct{}{}
	h.mu.Unlock()
	return ctx, a
}

// cut ends the request as its session's end does.
func (a *attachment) cut() { a.cancel(errSessionCut) }

// detach unbinds the request from its session and releases its context.
// A nil attachment (no session cookie) has nothing to detach.
func (a *attachment) detach() {
	if a == nil {
		return
	}
	h := a.h
	h.mu.Lock()
	if set := h.byKey[a.key]; set != nil {
		delete(set, a)
		if len(set) == 0 {
			delete(h.byKey, a.key)
		}
	}
	h.mu.Unlock()
	a.cancel(nil)
}

// attachSession binds the request to the session named by its cookie, then
// reads the session, in that order (see hub.attach). The context ends when
// the session is ended; att.detach must be called once the request is
// done, also when err is not nil (att is nil when there is no cookie).
// No cookie, or no live session, is the 401.
func (s *Server) attachSession(r *http.Request, wantEvent bool) (ctx context.Context, att *attachment, sess *sessionstore.Session, err error) {
	key, err := s.sessionKey(r)
	if err != nil {
		return r.Context(), nil, nil, err
	}
	ctx, att = s.hub.attach(r.Context(), key, wantEvent)
	sess, err = s.loadSessionKey(ctx, key)
	return ctx, att, sess, err
}

// end cuts every open request of the session named by ev.
func (h *hub) end(ev sessionstore.Event) {
	h.mu.Lock()
	set := h.byKey[ev.Key]
	delete(h.byKey, ev.Key)
	h.mu.Unlock()
	for a := range set {
		if a.ended != nil {
			select {
			case a.ended <- ev:
			default:
			}
			continue
		}
		a.cut()
	}
}

// relayEvents applies session-ended events from every instance until the
// subscription ends.
func (s *Server) relayEvents(events <-chan sessionstore.Event) {
	for ev := range events {
		if ev.Refreshed {
			s.refreshNotices.notify(ev.Key)
			continue
		}
		s.accessTokens.drop(ev.Key)
		s.routeTokenCache.drop(ev.Key)
		s.hub.end(ev)
	}
}
