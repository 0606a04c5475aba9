package bff

import (
	"context"
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
// tell its tab why.
type attachment struct {
	cancel context.CancelFunc
	ended  chan sessionstore.Event // nil for proxied requests
}

func newHub() *hub {
	return &hub{byKey: make(map[string]map[*attachment]struct{})}
}

// attach binds ctx to the session under key. The returned context ends when
// the session is ended; detach must be called when the request is done.
func (h *hub) attach(ctx context.Context, key string, wantEvent bool) (context.Context, *attachment, func()) {
	ctx, cancel := context.WithCancel(ctx)
	a := &attachment{cancel: cancel}
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
	detach := func() {
		h.mu.Lock()
		if set := h.byKey[key]; set != nil {
			delete(set, a)
			if len(set) == 0 {
				delete(h.byKey, key)
			}
		}
		h.mu.Unlock()
		cancel()
	}
	return ctx, a, detach
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
		a.cancel()
	}
}

// relayEvents applies session-ended events from every instance until the
// subscription ends.
func (s *Server) relayEvents(events <-chan sessionstore.Event) {
	for ev := range events {
		s.hub.end(ev)
	}
}
