package bff_test

import (
	"context"
	"testing"
	"time"
)

// Proxied event streams and WebSockets never end by themselves either: a
// shutdown that left them open would wait its whole timeout for them, and
// a hijacked WebSocket would outlive even the server's Close. Drain cuts
// them, as it closes the session-event streams, and the browser reconnects
// to another instance.
func TestDrainCutsProxiedStreams(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	s := b.openStream(t, "/api/events?interval=50ms", csrf())
	s.waitLine(t, "data:", 3*time.Second)
	ws, _, err := b.dialWS(t)
	if err != nil {
		t.Fatalf("WebSocket: %v", err)
	}
	defer ws.CloseNow()
	wsEnded := make(chan time.Time, 1)
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				wsEnded <- time.Now()
				return
			}
		}
	}()

	start := time.Now()
	st.server.Drain()
	if d := s.waitEnd(t, start, 5*time.Second); d > 2*time.Second {
		t.Errorf("proxied event stream cut %v after Drain, want at once", d)
	}
	select {
	case at := <-wsEnded:
		if d := at.Sub(start); d > 2*time.Second {
			t.Errorf("WebSocket cut %v after Drain, want at once", d)
		}
	case <-time.After(5 * time.Second):
		t.Error("WebSocket still open 5s after Drain")
	}
}
